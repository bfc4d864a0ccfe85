/*
 * The JSON the native agent sends, written without malloc into buffers the
 * agent owns, and the snapshot document itself.
 *
 * The snapshot travels in the data frames as a "native raw" document: the
 * agent knows return addresses, not file names and lines, so it sends the
 * addresses together with the map of loaded modules, and the recorder
 * symbolises them (formats/native.c) into an ordinary leakdiff-snapshot:
 *
 *   {"format": "leakdiff-native-raw", "version": 1,
 *    "modules": [{"path": "/usr/bin/prog", "start": N, "end": N,
 *                 "offset": N, "bias": N, "build_id": "hex"}, ...],
 *    "sites": [[COUNT, BYTES, [ADDR, ...], TOTAL_COUNT, TOTAL_BYTES], ...],
 *    "totals": {"heap_bytes": N, "heap_blocks": N},
 *    "meta": {"runtime": "native", "agent": "leakdiff-native 0.1.0",
 *             "pid": N, "seq": N, "label": S, "trigger": S, "time": S,
 *             "executable": S, "host": S, "depth": N, "untracked": N,
 *             "elapsed_ms": X}}
 *
 * A module is one object from dl_iterate_phdr(): start and end (exclusive)
 * span its PT_LOAD segments in memory, offset is the file offset of the
 * first one, bias is what was added to the ELF's virtual addresses (the
 * load bias; 0 for a fixed-address executable) and build_id the
 * NT_GNU_BUILD_ID note in hex ("" when there is none). The executable's path
 * comes from /proc/self/exe, and an object the loader knows by a relative
 * path (dlopen("./libplug.so")) is named by the absolute path the kernel
 * shows for its mapping, so that the recorder finds the file.
 *
 * A site is one distinct stack with live blocks: their number and requested
 * bytes, the return addresses innermost first (each points just after a
 * call instruction), then the number and bytes of all blocks ever allocated
 * there. Those running totals reach the site in batches from each thread,
 * so while other threads run they may lag by a few hundred allocations per
 * thread; the live counts are exact for every block whose malloc or free
 * had returned when the walk reached its shard. Addresses are integers
 * (user space fits in 2^53). Totals are the sums over the sites. meta comes
 * last so that elapsed_ms can cover the whole walk.
 *
 * In mixed mode (mixed.c) each stack's last element is the id of a Python
 * stack, not an address: it is written as a sixth element of the site,
 * after the running totals, and left out of the addresses.
 *
 * With sampling (meta.sample, the mean number of bytes between samples) a
 * block of n bytes is recorded with probability p = 1 - exp(-n / sample),
 * and COUNT and BYTES are unbiased estimates: the sums of 1/p and n/p over
 * the recorded blocks, rounded. The running totals then count the recorded
 * blocks only.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <link.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"

/* ------------------------------------------------------------ JSON writer */

int ld_json_flush(struct ld_json *j)
{
	if (j->sink && !j->failed && j->len) {
		if (j->sink(j->sink_ctx, j->buf, j->len) < 0)
			j->failed = true;
		j->sent += j->len;
		j->len = 0;
	}
	if (!j->pipe || j->failed || !j->len)
		return j->failed ? -1 : 0;
	j->crc = ld_crc32(j->crc, j->buf, j->len);
	j->sent += j->len;
	if (ld_pipe_frame(j->pipe, "data", j->buf, j->len) < 0)
		j->failed = true;
	j->len = 0;
	return j->failed ? -1 : 0;
}

void ld_json_raw(struct ld_json *j, const char *s, size_t n)
{
	while (n && !j->failed && !j->overflow) {
		if (j->len == j->cap) {
			if (!j->pipe && !j->sink) {
				j->overflow = true;
				return;
			}
			ld_json_flush(j);
			continue;
		}
		size_t take = j->cap - j->len < n ? j->cap - j->len : n;
		memcpy(j->buf + j->len, s, take);
		j->len += take;
		s += take;
		n -= take;
	}
}

void ld_json_lit(struct ld_json *j, const char *s)
{
	ld_json_raw(j, s, strlen(s));
}

void ld_json_u64(struct ld_json *j, uint64_t v)
{
	char tmp[21];
	size_t n = sizeof(tmp);
	do
		tmp[--n] = (char)('0' + v % 10);
	while (v /= 10);
	ld_json_raw(j, tmp + n, sizeof(tmp) - n);
}

void ld_json_i64(struct ld_json *j, int64_t v)
{
	if (v < 0) {
		ld_json_raw(j, "-", 1);
		ld_json_u64(j, (uint64_t)0 - (uint64_t)v);
	} else {
		ld_json_u64(j, (uint64_t)v);
	}
}

/* Length of the valid UTF-8 sequence at s (1 to 4), or 0 when invalid. */
static size_t utf8_len(const unsigned char *s)
{
	unsigned c = s[0];
	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		return (s[1] & 0xc0) == 0x80 ? 2 : 0;
	if (c >= 0xe0 && c <= 0xef) {
		if ((s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80)
			return 0;
		if (c == 0xe0 && s[1] < 0xa0)
			return 0; /* overlong */
		if (c == 0xed && s[1] >= 0xa0)
			return 0; /* surrogate */
		return 3;
	}
	if (c >= 0xf0 && c <= 0xf4) {
		if ((s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80 || (s[3] & 0xc0) != 0x80)
			return 0;
		if ((c == 0xf0 && s[1] < 0x90) || (c == 0xf4 && s[1] >= 0x90))
			return 0;
		return 4;
	}
	return 0;
}

void ld_json_str(struct ld_json *j, const char *str)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *s = (const unsigned char *)str;
	ld_json_raw(j, "\"", 1);
	while (*s) {
		const unsigned char *run = s;
		/* Copy plain ASCII in one go. */
		while (*s >= 0x20 && *s < 0x80 && *s != '"' && *s != '\\')
			s++;
		if (s > run)
			ld_json_raw(j, (const char *)run, (size_t)(s - run));
		if (!*s)
			break;
		if (*s == '"' || *s == '\\') {
			char esc[2] = { '\\', (char)*s };
			ld_json_raw(j, esc, 2);
			s++;
		} else if (*s < 0x20) {
			char esc[6] = { '\\', 'u', '0', '0', hex[*s >> 4], hex[*s & 15] };
			ld_json_raw(j, esc, 6);
			s++;
		} else {
			/* utf8_len stops at the NUL, whose top bits never match 10xxxxxx. */
			size_t n = utf8_len(s);
			if (n) {
				ld_json_raw(j, (const char *)s, n);
				s += n;
			} else {
				ld_json_raw(j, "\\ufffd", 6);
				s++;
			}
		}
	}
	ld_json_raw(j, "\"", 1);
}

/* ------------------------------------------------------------ time */

void ld_doc_time(char out[32])
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	int64_t secs = ts.tv_sec, days = secs / 86400, rem = secs % 86400;
	if (rem < 0) {
		rem += 86400;
		days--;
	}
	/* Civil date from days since 1970-01-01 (Howard Hinnant's algorithm). */
	int64_t z = days + 719468, era = (z >= 0 ? z : z - 146096) / 146097;
	int64_t doe = z - era * 146097;
	int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64_t y = yoe + era * 400, doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	int64_t mp = (5 * doy + 2) / 153, d = doy - (153 * mp + 2) / 5 + 1;
	int64_t m = mp < 10 ? mp + 3 : mp - 9;
	if (m <= 2)
		y++;
	int64_t v[7] = { y, m, d, rem / 3600, rem / 60 % 60, rem % 60, ts.tv_nsec / 1000000 };
	static const int width[7] = { 4, 2, 2, 2, 2, 2, 3 };
	static const char sep[7] = { '-', '-', 'T', ':', ':', '.', 'Z' };
	size_t n = 0;
	for (int i = 0; i < 7; i++) {
		int64_t x = v[i] < 0 ? 0 : v[i];
		for (int k = width[i] - 1; k >= 0; k--) {
			out[n + (size_t)k] = (char)('0' + x % 10);
			x /= 10;
		}
		n += (size_t)width[i];
		out[n++] = sep[i];
	}
	out[n] = '\0';
}

/* ------------------------------------------------------------ modules */

#define MAX_MODULES 4096
#define PATH_BYTES (512u << 10)
#define BUILD_ID_MAX 64
#define SCRATCH_BYTES (16u << 10)

struct module {
	uint64_t start, end, offset, bias;
	uint32_t path; /* offset into paths */
	uint8_t build_id_len;
	unsigned char build_id[BUILD_ID_MAX];
};

/*
 * Copies of the module map taken under the loader lock, so that nothing is
 * written to the pipe while dl_iterate_phdr() holds it. Only the snapshot
 * path uses them, one snapshot at a time.
 */
static struct {
	struct module *v;
	char *paths;
	size_t n, path_used;
	const char *executable;
	char *scratch;              /* for reading /proc/self/maps */
	char resolved[PATH_MAX];    /* the path found there */
} mods;

static void note_build_id(struct module *m, const ElfW(Phdr) *ph, ElfW(Addr) bias)
{
	const unsigned char *p = (const unsigned char *)(bias + ph->p_vaddr);
	const unsigned char *end = p + ph->p_memsz;
	size_t align = ph->p_align == 8 ? 8 : 4;
	while ((size_t)(end - p) >= sizeof(ElfW(Nhdr))) {
		const ElfW(Nhdr) *nh = (const ElfW(Nhdr) *)(const void *)p;
		size_t name = (nh->n_namesz + align - 1) & ~(align - 1);
		size_t desc = (nh->n_descsz + align - 1) & ~(align - 1);
		const unsigned char *name_at = p + sizeof(*nh);
		if (name > (size_t)(end - name_at) || desc > (size_t)(end - name_at) - name)
			return;
		if (nh->n_type == NT_GNU_BUILD_ID && nh->n_namesz == 4 && memcmp(name_at, "GNU", 4) == 0 &&
		    nh->n_descsz > 0 && nh->n_descsz <= BUILD_ID_MAX) {
			memcpy(m->build_id, name_at + name, nh->n_descsz);
			m->build_id_len = (uint8_t)nh->n_descsz;
			return;
		}
		p = name_at + name + desc;
	}
}

/*
 * The absolute path of the file mapped at addr, from /proc/self/maps, into
 * out; false when it cannot be found. For an object loaded by a relative
 * path (dlopen("./libplug.so")), whose name in the loader's list is only
 * good in the working directory of that moment. Reads with plain system
 * calls into a buffer of the module map's own, under the loader lock.
 */
static bool mapped_path(uint64_t addr, char *buf, size_t cap, char *out, size_t out_cap)
{
	int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	bool found = false;
	size_t have = 0;
	for (;;) {
		ssize_t n = read(fd, buf + have, cap - have);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		have += (size_t)n;
		char *line = buf, *nl;
		while ((nl = memchr(line, '\n', have - (size_t)(line - buf)))) {
			*nl = '\0';
			/* "start-end perms offset dev inode   path" */
			char *p = line;
			uint64_t lo = 0, hi = 0;
			while (*p && *p != '-')
				lo = lo * 16 + (uint64_t)(*p <= '9' ? *p - '0' : (*p | 0x20) - 'a' + 10), p++;
			if (*p == '-')
				p++;
			while (*p && *p != ' ')
				hi = hi * 16 + (uint64_t)(*p <= '9' ? *p - '0' : (*p | 0x20) - 'a' + 10), p++;
			char *path = strchr(p, '/');
			if (addr >= lo && addr < hi) {
				size_t len = path ? strlen(path) : 0;
				found = path && len < out_cap && !strstr(path, " (deleted)");
				if (found)
					memcpy(out, path, len + 1);
				goto done;
			}
			line = nl + 1;
		}
		/* Keep the unfinished line; one longer than the buffer is skipped. */
		size_t rest = have - (size_t)(line - buf);
		if (rest == cap)
			rest = 0;
		memmove(buf, line, rest);
		have = rest;
	}
done:
	close(fd);
	return found;
}

static int collect_module(struct dl_phdr_info *info, size_t size, void *ctx)
{
	(void)size;
	(void)ctx;
	if (mods.n == MAX_MODULES)
		return 1;
	struct module *m = &mods.v[mods.n];
	memset(m, 0, sizeof(*m));
	bool any = false;
	for (ElfW(Half) i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		if (ph->p_type != PT_LOAD)
			continue;
		uint64_t lo = info->dlpi_addr + ph->p_vaddr, hi = lo + ph->p_memsz;
		if (!any || lo < m->start) {
			m->start = lo;
			m->offset = ph->p_offset;
		}
		if (!any || hi > m->end)
			m->end = hi;
		any = true;
	}
	if (!any)
		return 0;
	/* Notes are read in place, so only when a readable segment maps them. */
	for (ElfW(Half) i = 0; i < info->dlpi_phnum && !m->build_id_len; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		if (ph->p_type != PT_NOTE)
			continue;
		for (ElfW(Half) k = 0; k < info->dlpi_phnum; k++) {
			const ElfW(Phdr) *load = &info->dlpi_phdr[k];
			if (load->p_type == PT_LOAD && (load->p_flags & PF_R) && ph->p_vaddr >= load->p_vaddr &&
			    ph->p_vaddr + ph->p_memsz <= load->p_vaddr + load->p_filesz) {
				note_build_id(m, ph, info->dlpi_addr);
				break;
			}
		}
	}
	m->bias = info->dlpi_addr;
	/* The first object is the program; its name is "" (or, rarely, argv[0]). */
	const char *path = info->dlpi_name && *info->dlpi_name && mods.n ? info->dlpi_name : NULL;
	if (!path)
		path = mods.n == 0 && mods.executable ? mods.executable : info->dlpi_name ? info->dlpi_name : "";
	/* A relative name with a directory in it: the file is found by where
	 * it is mapped, since the working directory may have changed. */
	if (path[0] != '/' && strchr(path, '/') && mods.scratch &&
	    mapped_path(m->start, mods.scratch, SCRATCH_BYTES, mods.resolved, sizeof(mods.resolved)))
		path = mods.resolved;
	size_t len = strlen(path) + 1;
	if (len > PATH_BYTES - mods.path_used)
		return 1;
	memcpy(mods.paths + mods.path_used, path, len);
	m->path = (uint32_t)mods.path_used;
	mods.path_used += len;
	mods.n++;
	return 0;
}

static void put_key(struct ld_json *j, const char *key, bool first)
{
	if (!first)
		ld_json_raw(j, ",", 1);
	ld_json_str(j, key);
	ld_json_raw(j, ":", 1);
}

static void write_modules(struct ld_json *j, const char *executable)
{
	if (!mods.v) {
		mods.v = ld_pages(MAX_MODULES * sizeof(*mods.v));
		mods.paths = ld_pages(PATH_BYTES);
		if (!mods.v || !mods.paths) {
			mods.v = NULL;
			ld_json_lit(j, "[]");
			return;
		}
	}
	if (!mods.scratch)
		mods.scratch = ld_pages(SCRATCH_BYTES); /* without it, relative names stay */
	mods.n = 0;
	mods.path_used = 0;
	mods.executable = executable;
	dl_iterate_phdr(collect_module, NULL);
	ld_json_raw(j, "[", 1);
	for (size_t i = 0; i < mods.n; i++) {
		const struct module *m = &mods.v[i];
		static const char hex[] = "0123456789abcdef";
		char id[2 * BUILD_ID_MAX + 1];
		for (size_t k = 0; k < m->build_id_len; k++) {
			id[2 * k] = hex[m->build_id[k] >> 4];
			id[2 * k + 1] = hex[m->build_id[k] & 15];
		}
		id[2 * m->build_id_len] = '\0';
		ld_json_lit(j, i ? ",{" : "{");
		put_key(j, "path", true);
		ld_json_str(j, mods.paths + m->path);
		put_key(j, "start", false);
		ld_json_u64(j, m->start);
		put_key(j, "end", false);
		ld_json_u64(j, m->end);
		put_key(j, "offset", false);
		ld_json_u64(j, m->offset);
		put_key(j, "bias", false);
		ld_json_u64(j, m->bias);
		put_key(j, "build_id", false);
		ld_json_str(j, id);
		ld_json_raw(j, "}", 1);
	}
	ld_json_raw(j, "]", 1);
}

/* ------------------------------------------------------------ document */

/* Room for n + 1 per-site sums, kept between snapshots; NULL if none. */
static struct ld_site_live *live_scratch(uint32_t n)
{
	static struct ld_site_live *buf;
	static size_t cap;
	size_t need = (size_t)n + 1;
	if (need > cap) {
		size_t ncap = cap ? cap : 4096;
		while (ncap < need)
			ncap *= 2;
		struct ld_site_live *nb = ld_pages(ncap * sizeof(*nb));
		if (!nb)
			return NULL;
		if (buf)
			munmap(buf, cap * sizeof(*buf));
		buf = nb;
		cap = ncap;
	}
	return buf;
}

static int64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int ld_doc_write(struct ld_json *j, const struct ld_doc_info *info)
{
	ld_json_lit(j, "{\"format\":\"leakdiff-native-raw\",\"version\":1,\"modules\":");
	write_modules(j, info->executable);

	ld_json_lit(j, ",\"sites\":[");
	uint64_t heap_bytes = 0, heap_blocks = 0;
	uint32_t n = ld_heap_nsites();
	struct ld_site_live *live = live_scratch(n);
	if (live)
		ld_heap_collect(live, n, (double)info->sample);
	bool first = true;
	for (uint32_t id = 1; live && id <= n && !j->failed; id++) {
		struct ld_site_info s;
		if (!live[id].count || !ld_heap_site_info(id, &s))
			continue;
		uint64_t count = live[id].count, bytes = live[id].bytes;
		if (info->sample) {
			/* Estimates, rounded; never below what was seen. */
			double c = live[id].est_count + 0.5, b = live[id].est_bytes + 0.5;
			count = c > (double)count ? (c < 9007199254740992.0 ? (uint64_t)c : UINT64_C(9007199254740992)) : count;
			bytes = b > (double)bytes ? (b < 9007199254740992.0 ? (uint64_t)b : UINT64_C(9007199254740992)) : bytes;
		}
		ld_json_lit(j, first ? "[" : ",[");
		first = false;
		ld_json_u64(j, count);
		ld_json_raw(j, ",", 1);
		ld_json_u64(j, bytes);
		ld_json_raw(j, ",[", 2);
		/* Mixed mode: the last element is the Python stack's id, not an address. */
		uint32_t naddr = info->mixed && s.depth ? s.depth - 1 : s.depth;
		for (uint32_t k = 0; k < naddr; k++) {
			if (k)
				ld_json_raw(j, ",", 1);
			ld_json_u64(j, s.stack[k]);
		}
		ld_json_raw(j, "],", 2);
		ld_json_u64(j, s.total_count);
		ld_json_raw(j, ",", 1);
		ld_json_u64(j, s.total_bytes);
		if (info->mixed) {
			ld_json_raw(j, ",", 1);
			ld_json_u64(j, s.depth ? s.stack[s.depth - 1] : 0);
		}
		ld_json_raw(j, "]", 1);
		heap_blocks += count;
		heap_bytes += bytes;
	}
	ld_json_lit(j, "],\"totals\":{\"heap_bytes\":");
	ld_json_u64(j, heap_bytes);
	ld_json_lit(j, ",\"heap_blocks\":");
	ld_json_u64(j, heap_blocks);

	char now[32];
	ld_doc_time(now);
	ld_json_lit(j, "},\"meta\":{\"runtime\":\"native\",\"agent\":");
	ld_json_str(j, info->agent);
	ld_json_lit(j, ",\"pid\":");
	ld_json_i64(j, info->pid);
	ld_json_lit(j, ",\"seq\":");
	ld_json_i64(j, info->seq);
	ld_json_lit(j, ",\"label\":");
	ld_json_str(j, info->label);
	ld_json_lit(j, ",\"trigger\":");
	ld_json_str(j, info->trigger);
	ld_json_lit(j, ",\"time\":");
	ld_json_str(j, now);
	if (info->executable) {
		ld_json_lit(j, ",\"executable\":");
		ld_json_str(j, info->executable);
	}
	if (info->host && *info->host) {
		ld_json_lit(j, ",\"host\":");
		ld_json_str(j, info->host);
	}
	ld_json_lit(j, ",\"depth\":");
	ld_json_u64(j, info->depth);
	ld_json_lit(j, ",\"untracked\":");
	ld_json_u64(j, info->untracked);
	if (info->sample) {
		ld_json_lit(j, ",\"sample\":");
		ld_json_u64(j, info->sample);
	}
	int64_t us = (mono_ns() - info->started_ns) / 1000;
	if (us < 0)
		us = 0;
	char ms[32];
	size_t n3 = 0;
	int64_t whole = us / 1000, frac = us % 1000;
	char digits[21];
	size_t nd = 0;
	do
		digits[nd++] = (char)('0' + whole % 10);
	while (whole /= 10);
	while (nd)
		ms[n3++] = digits[--nd];
	ms[n3++] = '.';
	ms[n3++] = (char)('0' + frac / 100);
	ms[n3++] = (char)('0' + frac / 10 % 10);
	ms[n3++] = (char)('0' + frac % 10);
	ld_json_lit(j, ",\"elapsed_ms\":");
	ld_json_raw(j, ms, n3);
	ld_json_lit(j, "}}");
	ld_json_flush(j);
	return j->failed ? -1 : 0;
}
