"""Which names crash repair may remove: read exactly as the patterns it used to match them."""

import itertools
import random
import re

from fleet.node import repair


def names(alphabet, longest, count):
    rng = random.Random(3)
    found = ["".join(chars) for n in range(4) for chars in itertools.product(alphabet, repeat=n)]
    return found + ["".join(rng.choice(alphabet) for _ in range(rng.randrange(longest))) for _ in range(count)]


def test_container_directories_are_64_lowercase_hex_digits():
    rng = random.Random(4)
    samples = [*names("0af-G", 70, 2000), "a" * 64, "A" * 64, "a" * 63, "a" * 65, "g" + "a" * 63]
    samples += ["".join(rng.choice("0123456789abcdef") for _ in range(64)) for _ in range(50)]
    for entry in samples:
        assert repair._is_container_dir(entry) == bool(re.fullmatch(r"[0-9a-f]{64}", entry)), entry


def test_build_directories_give_the_builders_pid():
    samples = [*names(".build-x19", 20, 5000), ".build-pull-123-abc_9", ".build-pull:a/b@-4567-q1w2",
               ".build--1-x", ".build-a-12-34-x", ".build-a-1-", ".build-a-\u0661-x", "x.build-a-1-b"]  # fmt: skip
    samples += [".build-" + tail for tail in names("-x1", 12, 5000)]
    for entry in samples:
        match = re.fullmatch(r"\.build-.+-(\d+)-[^-]+", entry, re.ASCII)
        assert repair._builder_pid(entry) == (match.group(1) if match else None), entry
    assert repair._builder_pid(".build-pull-123-abc_9") == "123"
