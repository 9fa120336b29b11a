/* Attacks that need more than busybox; run inside a container by tests/node/test_isolation.py.
 *
 *   escape euid           print the effective uid (installed setuid root, run as nobody:
 *                         0 would mean no_new_privs failed to stop the setuid bit)
 *   escape chroot MARKER  the classic chroot escape: chroot into a subdirectory without
 *                         entering it, climb "..", chroot there; prints "escaped" if the
 *                         host file MARKER is then visible, "contained" otherwise
 */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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
    fprintf(stderr, "usage: escape euid | escape chroot MARKER\n");
    return 2;
}
