// The only C the project has: libssh2's headers, plus small inline forms of its function-like
// macros (Swift does not import those) and a receive callback that keeps ACKs prompt.
#include <libssh2.h>
#include <libssh2_sftp.h>
#include <errno.h>
#include <string.h>
#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

static inline LIBSSH2_SESSION *provision_session_new(void) {
    return libssh2_session_init_ex(NULL, NULL, NULL, NULL);
}

static inline LIBSSH2_CHANNEL *provision_channel_open_session(LIBSSH2_SESSION *session) {
    return libssh2_channel_open_ex(session, "session", sizeof("session") - 1,
                                   LIBSSH2_CHANNEL_WINDOW_DEFAULT, LIBSSH2_CHANNEL_PACKET_DEFAULT, NULL, 0);
}

static inline int provision_channel_exec(LIBSSH2_CHANNEL *channel, const char *command) {
    return libssh2_channel_process_startup(channel, "exec", sizeof("exec") - 1,
                                           command, (unsigned int)strlen(command));
}

// Delayed ACKs cost ~30 ms per request/response exchange; re-arming QUICKACK after each receive avoids it.
static inline ssize_t provision_recv_quickack(libssh2_socket_t fd, void *buffer, size_t length, int flags,
                                              void **abstract) {
    (void)abstract;
    ssize_t n = recv(fd, buffer, length, flags);
    if (n < 0) return -errno;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof one);
    return n;
}

static inline void provision_session_use_quickack(LIBSSH2_SESSION *session) {
    libssh2_session_callback_set(session, LIBSSH2_CALLBACK_RECV, (void *)provision_recv_quickack);
}

static inline const char *provision_session_error(LIBSSH2_SESSION *session) {
    char *message = NULL;
    libssh2_session_last_error(session, &message, NULL, 0);
    return message ? message : "";
}
