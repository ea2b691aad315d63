#define _GNU_SOURCE
#include <sched.h>
#include "CLinuxShim.h"

int cw_affinity_cpu_count(void) {
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) != 0) return -1;
    return CPU_COUNT(&set);
}

#include <sys/socket.h>

int cw_accept_nonblocking(int fd) {
    return accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
}

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Starts argv[0] (an absolute path) with envp, without the daemon's ambient capabilities, stdin from /dev/null and stdout + stderr into
 * output_fd, in a session of its own (so a timeout can kill its whole process group), with
 * every other fd closed, the signal mask empty and dispositions default. Between fork and
 * exec only async-signal-safe calls. Returns the child's pid, or -1 with errno (from fork);
 * an exec failure makes the child exit 127 after writing the errno to error_fd (close-on-exec:
 * the parent reads EOF when exec succeeds). */
pid_t cw_spawn(char *const argv[], char *const envp[], int output_fd, int error_fd) {
    pid_t pid = fork();
    if (pid != 0) return pid;
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    for (int s = 1; s < NSIG; s++) signal(s, SIG_DFL);
    setsid();
    int null = open("/dev/null", O_RDONLY);
    if (null >= 0 && null != 0) { dup2(null, 0); }
    dup2(output_fd, 1);
    dup2(output_fd, 2);
    if (error_fd != 3) { dup2(error_fd, 3); fcntl(3, F_SETFD, FD_CLOEXEC); }
    /* close_range(4, ~0U, 0) where the kernel has it (5.9+), else one by one. */
    if (syscall(436 /* SYS_close_range */, 4, ~0U, 0) != 0) {
        for (int fd = 4; fd < 65536; fd++) close(fd);
    }
    /* The daemon's ambient capabilities (CAP_DAC_READ_SEARCH, CAP_SYS_PTRACE, …) are not the
     * command's: cleared, so a non-root daemon's command runs with none. */
    prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
    execve(argv[0], argv, envp);
    int code = errno;
    ssize_t ignored = write(3, &code, sizeof code);
    (void)ignored;
    _exit(127);
}

int cw_pipe_cloexec(int fds[2]) {
    return pipe2(fds, O_CLOEXEC);
}
