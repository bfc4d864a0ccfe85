/*
 * Frames on the recorder's pipe (leakdiff-protocol(7)) and the CRC-32 the
 * end frame carries. The agent only ever writes with writev() from buffers
 * it owns, checks before each frame that the descriptor is still the pipe
 * the recorder handed over, and gives up for good at the first problem: a
 * program that closed or reused the descriptor must never get our bytes.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"

/* ------------------------------------------------------------ CRC-32 */

/*
 * The reflected polynomial 0xEDB88320 of zlib and IEEE 802.3. The table is
 * built on first use; two threads building it at once write the same
 * values, and snapshots are serialised anyway.
 */
static uint32_t crc_table[256];
static atomic_bool crc_ready;

static void crc_init(void)
{
	for (uint32_t n = 0; n < 256; n++) {
		uint32_t c = n;
		for (int k = 0; k < 8; k++)
			c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
		crc_table[n] = c;
	}
	atomic_store_explicit(&crc_ready, true, memory_order_release);
}

uint32_t ld_crc32(uint32_t crc, const void *data, size_t len)
{
	if (!atomic_load_explicit(&crc_ready, memory_order_acquire))
		crc_init();
	const unsigned char *p = data;
	crc = ~crc;
	while (len--)
		crc = crc_table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return ~crc;
}

/* ------------------------------------------------------------ frames */

bool ld_pipe_owned(struct ld_pipe *p)
{
	struct stat st;
	if (p->dead)
		return false;
	if (fstat(p->fd, &st) < 0 || st.st_dev != p->dev || st.st_ino != p->ino) {
		p->dead = true;
		return false;
	}
	return true;
}

/* Writes the iovecs completely; false on any error but EINTR. */
static bool write_all(int fd, struct iovec *iov, int n)
{
	while (n > 0) {
		ssize_t w = writev(fd, iov, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN) {
				/* Someone made our pipe non-blocking: wait until it drains. */
				struct pollfd pfd = { .fd = fd, .events = POLLOUT };
				if (poll(&pfd, 1, -1) < 0 && errno != EINTR)
					return false;
				continue;
			}
			return false;
		}
		size_t done = (size_t)w;
		while (n > 0 && done >= iov->iov_len) {
			done -= iov->iov_len;
			iov++;
			n--;
		}
		if (n > 0) {
			iov->iov_base = (char *)iov->iov_base + done;
			iov->iov_len -= done;
		}
	}
	return true;
}

/* Decimal digits of v into out (at least 21 bytes); returns the length. */
static size_t utoa(uint64_t v, char *out)
{
	char tmp[21];
	size_t n = 0;
	do
		tmp[n++] = (char)('0' + v % 10);
	while (v /= 10);
	for (size_t i = 0; i < n; i++)
		out[i] = tmp[n - 1 - i];
	return n;
}

int ld_pipe_frame(struct ld_pipe *p, const char *tag, const void *payload, size_t len)
{
	if (!ld_pipe_owned(p))
		return -1;
	char head[40];
	size_t tl = strlen(tag);
	memcpy(head, tag, tl);
	head[tl] = ' ';
	size_t hl = tl + 1 + utoa(len, head + tl + 1);
	head[hl++] = '\n';
	struct iovec iov[3] = {
		{ .iov_base = head, .iov_len = hl },
		{ .iov_base = (void *)(uintptr_t)payload, .iov_len = len },
		{ .iov_base = "\n", .iov_len = 1 },
	};

	/*
	 * A write to a pipe nobody reads raises SIGPIPE in the writing thread.
	 * Holding it blocked turns that into EPIPE; a SIGPIPE our write left
	 * pending is consumed before the old mask comes back, unless one was
	 * already pending for the program.
	 */
	sigset_t pipe_only, old, pending;
	sigemptyset(&pipe_only);
	sigaddset(&pipe_only, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe_only, &old);
	bool was_pending = sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE);
	int saved = errno;
	bool ok = write_all(p->fd, iov, 3);
	if (!ok) {
		p->dead = true;
		if (!was_pending && sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE)) {
			struct timespec zero = { 0, 0 };
			sigtimedwait(&pipe_only, NULL, &zero);
		}
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	errno = saved;
	return ok ? 0 : -1;
}

void ld_pipe_hold(struct ld_pipe *p)
{
	/* flock works on pipes in Linux and keeps another traced process's
	 * frames from landing between our begin and end. */
	if (p->shared)
		while (flock(p->fd, LOCK_EX) < 0 && errno == EINTR)
			;
}

void ld_pipe_release(struct ld_pipe *p)
{
	if (p->shared)
		flock(p->fd, LOCK_UN);
}
