"""A small argument parser for the `baleine` command tree, with --help.

Why not argparse: importing it (with re, enum and gettext) and building the
tree cost 12-15 ms, paid by every command, a container start or a fleet
listing included. This covers what baleine's verbs use and nothing more:
nested commands, --long and -s options (with a value, a flag, or repeated),
required options, positionals (one, optional, any number, or the rest of the
line), one pair of options that exclude each other, and help made from all
that. Option values are taken as given, as getopt does: `--time -3` passes
"-3" for the verb to judge. Bad usage raises Invalid; --help prints and exits.
"""

import sys
from types import SimpleNamespace

from .errors import Invalid

REST = "..."  # nargs: this positional takes every word left, options included (a command line)


class Option:
    def __init__(self, flags, dest, takes_value, repeat, required, default, metavar, help_text):
        self.flags = flags
        self.dest = dest
        self.takes_value = takes_value
        self.repeat = repeat
        self.required = required
        self.default = [] if repeat else (default if takes_value else False)
        self.metavar = metavar or dest.upper()
        self.help = help_text

    @property
    def label(self):
        return "/".join(self.flags)

    def usage(self):
        return ", ".join(self.flags) + (f" {self.metavar}" if self.takes_value else "")


class Positional:
    def __init__(self, dest, nargs, metavar, help_text, required):
        self.dest = dest
        self.nargs = nargs  # None (exactly one), "?", "*" or REST
        self.metavar = metavar or dest.upper()
        self.help = help_text
        self.required = required or nargs is None  # REST: a command line that must have its command

    def usage(self):
        rest = f"{self.metavar} [ARG...]" if self.required else f"[{self.metavar} [ARG...]]"
        many = f"{self.metavar}..." if self.required else f"[{self.metavar}...]"
        return {None: self.metavar, "?": f"[{self.metavar}]", "*": many}.get(self.nargs, rest)


class Command:
    """One node of the tree: either a group of subcommands or a verb with options."""

    def __init__(self, prog, help_text="", description=None, handler=None, epilog=""):
        self.prog = prog
        self.help = help_text
        self.description = description or help_text
        self.handler = handler
        self.epilog = epilog
        self.options = {}  # every flag -> Option
        self.sections = [("options", [])]  # (title, [Option]) in help order
        self.positionals = []
        self.commands = {}
        self.aliases = {}  # another name -> the command's own (Docker's habits: ls for list)
        self.exclusive = []
        self.version = None
        self.option("--help", "-h", flag=True, help_text="show this help and exit")

    # ------------------------------------------------------------ building

    def command(self, name, help_text, description=None, handler=None):
        child = Command(f"{self.prog} {name}", help_text, description, handler, self.epilog)
        self.commands[name] = child
        return child

    def alias(self, other, name):
        """Let other name command name too (shown beside it in --help)."""
        self.aliases[other] = name

    def section(self, title):
        """Options added after this appear under their own heading in --help."""
        self.sections.append((title, []))

    def option(self, *flags, dest=None, flag=False, repeat=False, required=False, default=None, metavar=None,
               help_text=""):  # fmt: skip
        dest = dest or flags[0].lstrip("-").replace("-", "_")
        option = Option(flags, dest, not flag, repeat, required, default, metavar, help_text)
        for name in flags:
            self.options[name] = option
        self.sections[-1][1].append(option)
        return option

    def positional(self, dest, nargs=None, metavar=None, help_text="", required=False):
        self.positionals.append(Positional(dest, nargs, metavar, help_text, required))

    def exclude(self, first, second):
        """Options (by dest) that may not be given together."""
        self.exclusive.append((first, second))

    # ------------------------------------------------------------ parsing

    def parse(self, argv):
        """A namespace with every dest of the chosen verb, and handler."""
        values = SimpleNamespace(json=False)
        node, words = self, list(argv)
        while True:
            node._defaults(values)
            words = node._take_options(words, values)
            if not node.commands:
                break
            if not words:
                node._fail(f"missing command: choose from {', '.join(node.commands)}")
            name, words = words[0], words[1:]
            name = node.aliases.get(name, name)
            if name not in node.commands:
                node._fail(f"unknown command {name!r}: choose from {', '.join(node.commands)}")
            node = node.commands[name]
        node._take_positionals(words, values)
        node._check(values)
        values.handler = node.handler
        return values

    def _defaults(self, values):
        for option in self._all_options():
            if option.dest == "json" and values.json:
                continue  # --json given before the verb (baleine --json container list) stays given
            setattr(values, option.dest, list(option.default) if option.repeat else option.default)
        for positional in self.positionals:
            setattr(values, positional.dest, [] if positional.nargs in ("*", REST) else None)

    def _take_options(self, words, values):
        """Consume options wherever they stand; returns the other words, in order.

        A group of commands stops at its first non-option (the command's name);
        a verb stops at `--` and once the words reach a REST positional.
        """
        others = []
        while words:
            word, words = words[0], words[1:]
            if word == "--" and not self.commands:
                others.extend(words)
                break
            if not word.startswith("-") or word == "-":
                others.append(word)
                if self.commands or self._rest_reached(others):
                    others.extend(words)
                    break
                continue
            words = self._take_option(word, words, values)
        return others

    def _take_option(self, word, words, values):
        name, attached = _split(word)
        option = self.options.get(name)
        if option is None:
            self._fail(f"unknown option {word!r}")
        if option.dest == "help":
            sys.stdout.write(self.help_text())
            raise SystemExit(0)
        if option.dest == "version":
            sys.stdout.write(self.version + "\n")
            raise SystemExit(0)
        if not option.takes_value:
            if attached is not None and not word.startswith("--"):
                setattr(values, option.dest, True)  # a bundle of short options: -aq is -a -q, -dv X is -d -v X
                return self._take_option(f"-{attached}", words, values)
            if attached is not None:
                self._fail(f"{name} takes no value (got {word!r})")
            setattr(values, option.dest, True)
            return words
        if attached is None:
            if not words:
                self._fail(f"{option.label} needs a value ({option.metavar})")
            attached, words = words[0], words[1:]
        if option.repeat:
            getattr(values, option.dest).append(attached)
        else:
            setattr(values, option.dest, attached)
        return words

    def _rest_reached(self, positional_words):
        """True once the fixed positionals are filled: what follows is the REST one's (a command line)."""
        fixed = [p for p in self.positionals if p.nargs != REST]
        return len(fixed) < len(self.positionals) and len(positional_words) >= len(fixed)

    def _take_positionals(self, words, values):
        for positional in self.positionals:
            if positional.required and not words:
                self._fail(f"missing {positional.metavar}")
            if positional.nargs in ("*", REST):
                setattr(values, positional.dest, words)
                words = []
            elif words:
                setattr(values, positional.dest, words[0])
                words = words[1:]
        if words:
            self._fail(f"unexpected argument {words[0]!r}")

    def _check(self, values):
        for option in self._all_options():
            if option.required and getattr(values, option.dest) is None:
                self._fail(f"missing {option.flags[0]} {option.metavar}")
        for first, second in self.exclusive:
            if getattr(values, first) and getattr(values, second):
                labels = {option.dest: option.label for option in self._all_options()}
                self._fail(f"{labels[second]} is not allowed with {labels[first]}")

    def _all_options(self):
        return [option for _, options in self.sections for option in options]

    def _fail(self, message):
        raise Invalid(f"{message} (see: {self.prog} --help)")

    # ------------------------------------------------------------ help

    def help_text(self):
        blocks = [("commands", [(self._named(name), child.help) for name, child in self.commands.items()]),
                  ("arguments", [(p.metavar, p.help) for p in self.positionals])]  # fmt: skip
        blocks += [(title, [(o.usage(), o.help) for o in options]) for title, options in self.sections]
        blocks = [(title, rows) for title, rows in blocks if rows]
        width = min(max(len(left) for _, rows in blocks for left, _ in rows), 28)
        lines = [f"usage: {self._usage()}", "", self.description, ""]
        for title, rows in blocks:
            lines += [f"{title}:", *_rows(rows, width), ""]
        if self.epilog:
            lines.append(self.epilog)
        return "\n".join(lines).rstrip("\n") + "\n"

    def _named(self, name):
        return ", ".join([name, *(other for other, own in self.aliases.items() if own == name)])

    def _usage(self):
        parts = [self.prog]
        required = [o for o in self._all_options() if o.required]
        parts += [f"{o.flags[0]} {o.metavar}" for o in required]
        if len(self._all_options()) > len(required):
            parts.append("[options]")
        if self.commands:
            parts.append("COMMAND ...")
        parts += [p.usage() for p in self.positionals]
        return " ".join(parts)


def _split(word):
    """('--name', 'value') for --name=value, ('-e', 'K=V') for -eK=V, (word, None) otherwise."""
    if word.startswith("--"):
        name, equals, value = word.partition("=")
        return name, value if equals else None
    if len(word) > 2:
        return word[:2], word[2:]
    return word, None


def _rows(pairs, width):
    """Two aligned columns; a left side wider than width gets a line of its own."""
    rows = []
    for left, right in pairs:
        if len(left) > width:
            rows.append(f"  {left}")
            left = ""
        rows.append(f"  {left:<{width}}  {right}".rstrip())
    return rows
