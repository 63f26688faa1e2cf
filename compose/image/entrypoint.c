/*
 * eddy-entrypoint: the images' PID 1 before exec, playing the part that
 * `gosu` plays in the official zookeeper and cp-kafka images. The images are
 * FROM scratch (no shell, no chown), and the compose files bind-mount
 * ./storage/... directories that the Docker engine creates owned by root; so
 * when started as root this makes the data directories (the ones named in
 * EDDY_DATA_DIRS, colon-separated) exist and belong to the run user, drops to
 * that user and group, and execs the real program (argv[1..]). The program
 * then is PID 1 and gets the SIGTERM of `docker stop` itself. Started as any
 * other user (`docker run --user`, a non-root policy) it only execs.
 *
 * The run user is the owner of the file EDDY_OWNER_REF names (the compose
 * files bind-mount one from the host: by default the compose file itself), so
 * ./storage stays its user's to read and delete; when that owner is root, or
 * there is no such file, it is 65532:65532. The directories the engine made
 * on the way to the data directories (./storage, ./storage/zoo1, ...) are
 * root's too: where the compose files mount the storage root at
 * EDDY_STORAGE_ROOT, its whole tree is handed to the run user as well.
 *
 * Built static (glibc, no NSS calls) by compose/build-images.sh.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#define DEFAULT_UID 65532
#define DEFAULT_GID 65532

static uid_t run_uid = DEFAULT_UID;
static gid_t run_gid = DEFAULT_GID;

static void die(const char *what, const char *arg) {
    fprintf(stderr, "eddy-entrypoint: %s %s: %s\n", what, arg ? arg : "", strerror(errno));
    exit(111);
}

static void mkdirs(char *path) {
    for (char *p = path + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            if (mkdir(path, 0755) != 0 && errno != EEXIST) die("mkdir", path);
            *p = '/';
        }
    }
    if (mkdir(path, 0755) != 0 && errno != EEXIST) die("mkdir", path);
}

/* chown -R, without following symlinks. Another container's server may be
 * writing in the same storage tree meanwhile: an entry that vanishes under
 * the walk (a renamed temp file, a deleted segment) is skipped. */
static void chown_tree(int dirfd, const char *name, const char *shown) {
    struct stat st;
    if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
        if (errno == ENOENT) return;
        die("stat", shown);
    }
    if ((st.st_uid != run_uid || st.st_gid != run_gid) &&
        fchownat(dirfd, name, run_uid, run_gid, AT_SYMLINK_NOFOLLOW) != 0) {
        if (errno == ENOENT) return;
        die("chown", shown);
    }
    if (!S_ISDIR(st.st_mode)) return;
    int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
    if (fd < 0) {
        if (errno == ENOENT) return;
        die("open", shown);
    }
    DIR *d = fdopendir(fd);
    if (!d) die("opendir", shown);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        chown_tree(fd, e->d_name, e->d_name);
    }
    closedir(d);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: eddy-entrypoint PROGRAM [ARGS...]\n");
        return 2;
    }
    if (getuid() == 0) {
        const char *ref = getenv("EDDY_OWNER_REF");
        struct stat owner;
        if (ref && *ref && stat(ref, &owner) == 0 && owner.st_uid != 0) {
            run_uid = owner.st_uid;
            run_gid = owner.st_gid;
        }
        const char *root = getenv("EDDY_STORAGE_ROOT");
        struct stat rs;
        if (root && *root && stat(root, &rs) == 0 && S_ISDIR(rs.st_mode))
            chown_tree(AT_FDCWD, root, root);
        const char *dirs = getenv("EDDY_DATA_DIRS");
        if (dirs && *dirs) {
            char *list = strdup(dirs);
            for (char *dir = strtok(list, ":"); dir; dir = strtok(NULL, ":")) {
                mkdirs(dir);
                struct stat st;
                if (stat(dir, &st) != 0) die("stat", dir);
                /* Only a tree this user does not own yet is walked. */
                if (st.st_uid != run_uid || st.st_gid != run_gid)
                    chown_tree(AT_FDCWD, dir, dir);
            }
            free(list);
        }
        if (setgroups(1, &run_gid) != 0) die("setgroups", NULL);
        if (setgid(run_gid) != 0) die("setgid", NULL);
        if (setuid(run_uid) != 0) die("setuid", NULL);
    }
    execv(argv[1], argv + 1);
    die("exec", argv[1]);
    return 111;
}
