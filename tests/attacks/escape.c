/* Attacks that need more than busybox; run inside a container by tests/node/test_isolation.py.
 *
 *   escape euid           print the effective uid (installed setuid root, run as nobody:
 *                         0 would mean no_new_privs failed to stop the setuid bit)
 *   escape chroot MARKER  the classic chroot escape: chroot into a subdirectory without
 *                         entering it, climb "..", chroot there; prints "escaped" if the
 *                         host file MARKER is then visible, "contained" otherwise
 *   escape syscalls       try what the seccomp filter refuses; one line per call: its name,
 *                         then "ok" or the errno's name
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/io_uring.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

static void report(const char *name, long result) {
    const char *why = result >= 0 ? "ok" : errno == EPERM ? "EPERM" : errno == ENOSYS ? "ENOSYS"
                    : errno == EINVAL ? "EINVAL" : strerror(errno);
    printf("%s %s\n", name, why);
}

static void try_syscalls(void) {
    struct io_uring_params params;
    memset(&params, 0, sizeof params);
    report("getpid", syscall(SYS_getpid));
    report("keyctl", syscall(SYS_keyctl, 0 /* KEYCTL_GET_KEYRING_ID */, -3 /* session */, 1));
    report("io_uring", syscall(SYS_io_uring_setup, 1, &params));
    report("clone3", syscall(SYS_clone3, NULL, 0)); /* no arguments: EINVAL if the kernel sees it */
    report("unshare-user", syscall(SYS_unshare, CLONE_NEWUSER));
    report("unshare-uts", syscall(SYS_unshare, CLONE_NEWUTS)); /* a capability's business, not the filter's */
}

int main(int argc, char **argv) {
    if (argc == 2 && strcmp(argv[1], "euid") == 0) {
        printf("%d\n", (int)geteuid());
        return 0;
    }
    if (argc == 3 && strcmp(argv[1], "chroot") == 0) {
        mkdir("/jail", 0755);
        if (chroot("/jail") != 0) {
            perror("chroot");
            return 2;
        }
        for (int i = 0; i < 64; i++)
            chdir("..");
        chroot(".");
        puts(access(argv[2], F_OK) == 0 ? "escaped" : "contained");
        return 0;
    }
    if (argc == 2 && strcmp(argv[1], "syscalls") == 0) {
        try_syscalls();
        return 0;
    }
    fprintf(stderr, "usage: escape euid | escape chroot MARKER | escape syscalls\n");
    return 2;
}
