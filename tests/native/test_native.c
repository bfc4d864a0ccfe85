/*
 * Unit tests for formats/native.c and core/symbolize.c: raw documents that
 * must be refused, with the reason; and real return addresses taken in
 * this test binary, which must come back as this file, line and function,
 * including a call inlined into its caller.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "native.h"
#include "symbolize.h"

/* ---------------------------------------------------------------- helpers */

static struct ld_snapshot *parse_ok(const char *json)
{
	struct ld_error err = { { 0 } };
	struct ld_snapshot *s = NULL;
	int r = ld_native_parse(json, strlen(json), &s, &err);
	cr_assert_eq(r, 0, "parse failed (%d): %s", r, err.msg);
	cr_assert_not_null(s);
	return s;
}

/* Parses json, expecting a refusal whose message contains want. */
static void parse_bad(const char *json, const char *want)
{
	struct ld_error err = { { 0 } };
	struct ld_snapshot *s = NULL;
	int r = ld_native_parse(json, strlen(json), &s, &err);
	cr_assert_eq(r, -EINVAL, "expected -EINVAL for %s, got %d (%s)", json, r, err.msg);
	cr_assert_null(s);
	cr_assert(strstr(err.msg, want), "message \"%s\" does not mention \"%s\"", err.msg, want);
}

/* The map of this process's modules, as the agent would send it. */
struct module_map {
	struct ld_buf *b;
	const char *exe_build_id; /* claimed for the executable, or NULL */
};

static int put_module(struct dl_phdr_info *info, size_t size, void *ctx)
{
	(void)size;
	struct module_map *mm = ctx;
	struct ld_buf *b = mm->b;
	uint64_t lo = UINT64_MAX, hi = 0;
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		if (ph->p_type != PT_LOAD)
			continue;
		uint64_t s = info->dlpi_addr + ph->p_vaddr, e = s + ph->p_memsz;
		lo = s < lo ? s : lo;
		hi = e > hi ? e : hi;
	}
	if (hi == 0)
		return 0;
	char exe[4096];
	const char *path = info->dlpi_name;
	bool main_program = !path || !*path;
	if (main_program) {
		ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
		exe[n > 0 ? n : 0] = '\0';
		path = exe;
	}
	if (b->len && b->data[b->len - 1] == '}')
		ld_buf_putc(b, ',');
	ld_buf_puts(b, "{\"path\":");
	ld_buf_json_str(b, path);
	ld_buf_printf(b, ",\"start\":%llu,\"end\":%llu,\"bias\":%llu", (unsigned long long)lo,
		      (unsigned long long)hi, (unsigned long long)info->dlpi_addr);
	if (main_program && mm->exe_build_id)
		ld_buf_printf(b, ",\"build_id\":\"%s\"", mm->exe_build_id);
	ld_buf_putc(b, '}');
	return 0;
}

static void put_modules_claiming(struct ld_buf *b, const char *exe_build_id)
{
	struct module_map mm = { .b = b, .exe_build_id = exe_build_id };
	ld_buf_puts(b, "\"modules\":[");
	dl_iterate_phdr(put_module, &mm);
	ld_buf_puts(b, "]");
}

static void put_modules(struct ld_buf *b)
{
	put_modules_claiming(b, NULL);
}

/* A raw document with one site of count blocks and the given return addresses. */
static char *raw_doc(const uintptr_t *addrs, size_t n, unsigned count)
{
	struct ld_buf b;
	ld_buf_init(&b);
	ld_buf_puts(&b, "{\"format\":\"leakdiff-native-raw\",\"version\":1,");
	put_modules(&b);
	ld_buf_printf(&b, ",\"sites\":[[%u,%u,[", count, count * 16);
	for (size_t i = 0; i < n; i++)
		ld_buf_printf(&b, "%s%llu", i ? "," : "", (unsigned long long)addrs[i]);
	ld_buf_puts(&b, "]]],\"meta\":{\"pid\":42,\"seq\":3,\"label\":\"x\",\"trigger\":\"api\",\"depth\":8}}");
	cr_assert(!b.oom);
	return ld_buf_detach(&b, NULL);
}

static const char *str(const struct ld_snapshot *s, uint32_t i)
{
	return ld_snapshot_str(s, i);
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);
	return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* ---------------------------------------------------------------- code to find */

static __attribute__((noinline)) uintptr_t return_address(void)
{
	return (uintptr_t)__builtin_return_address(0);
}

/* A static function, so only DWARF or .symtab can name it. */
static __attribute__((noinline)) uintptr_t static_caller(int *line)
{
	uintptr_t r = return_address(); *line = __LINE__;
	__asm__ __volatile__("" ::: "memory"); /* no tail call */
	return r;
}

static inline __attribute__((always_inline)) uintptr_t inlined_callee(int *line)
{
	uintptr_t r = return_address(); *line = __LINE__;
	return r;
}

static __attribute__((noinline)) uintptr_t inlining_caller(int *inner, int *outer)
{
	uintptr_t r = inlined_callee(inner); *outer = __LINE__;
	__asm__ __volatile__("" ::: "memory");
	return r;
}

/* ---------------------------------------------------------------- good input */

Test(native, symbolizes_static_function)
{
	int line = 0;
	uintptr_t ra = static_caller(&line);
	char *doc = raw_doc(&ra, 1, 5);
	struct ld_snapshot *s = parse_ok(doc);
	cr_assert_eq(s->nsites, 1);
	cr_assert_eq(s->sites[0].count, 5);
	cr_assert_eq(s->sites[0].bytes, 80);
	cr_assert_eq(s->totals.heap_blocks, 5);
	cr_assert_eq(s->totals.heap_bytes, 80);
	cr_assert_geq(s->sites[0].depth, 1);
	const struct ld_frame *f = &s->frames[ld_snapshot_stack(s, s->sites[0].stack)[0]];
	cr_assert_str_eq(str(s, f->function), "static_caller");
	cr_assert(ends_with(str(s, f->file), "tests/native/test_native.c"), "file %s", str(s, f->file));
	cr_assert_eq(f->line, line);
	cr_assert_gt(f->function_line, 0);
	cr_assert_lt(f->function_line, line);
	cr_assert_eq(f->text, LD_NOSTR);
	cr_assert_str_eq(s->meta.runtime, "native");
	cr_assert_str_eq(s->meta.label, "x");
	cr_assert_str_eq(s->meta.trigger, "api");
	cr_assert_eq(s->meta.pid, 42);
	cr_assert_eq(s->meta.seq, 3);
	cr_assert_eq(s->meta.tracing, 1);
	cr_assert_geq(s->meta.nroots, 1, "the compilation directory should be a root");
	cr_assert_gt(s->meta.nstdlib, 0);
	ld_snapshot_destroy(s);
	free(doc);
}

Test(native, expands_inlined_calls)
{
	int inner = 0, outer = 0;
	uintptr_t ra = inlining_caller(&inner, &outer);
	char *doc = raw_doc(&ra, 1, 1);
	struct ld_snapshot *s = parse_ok(doc);
	cr_assert_eq(s->nsites, 1);
	cr_assert_geq(s->sites[0].depth, 2);
	const uint32_t *st = ld_snapshot_stack(s, s->sites[0].stack);
	const struct ld_frame *f0 = &s->frames[st[0]], *f1 = &s->frames[st[1]];
	cr_assert_str_eq(str(s, f0->function), "inlined_callee");
	cr_assert_eq(f0->line, inner);
	cr_assert_str_eq(str(s, f1->function), "inlining_caller");
	cr_assert_eq(f1->line, outer);
	cr_assert(ends_with(str(s, f1->file), "test_native.c"));
	/* The snapshot says which frame was inlined into which. */
	cr_assert_eq(f0->kind, LD_FRAME_INLINED);
	cr_assert_str_eq(str(s, f0->kind_name), "inlined");
	cr_assert_eq(f1->kind, LD_FRAME_NATIVE);
	cr_assert_str_eq(str(s, f1->kind_name), "native");
	ld_snapshot_destroy(s);
	free(doc);
}

Test(native, merges_stacks_with_equal_frames)
{
	int line;
	uintptr_t a = static_caller(&line);
	/* Two different addresses in the same call instruction's line would be
	 * unusual; the same address twice in two raw sites is the plain case. */
	struct ld_buf b;
	ld_buf_init(&b);
	ld_buf_puts(&b, "{\"format\":\"leakdiff-native-raw\",\"version\":1,");
	put_modules(&b);
	ld_buf_printf(&b, ",\"sites\":[[2,20,[%llu]],[3,30,[%llu]],[0,0,[1]]]}", (unsigned long long)a,
		      (unsigned long long)a);
	char *doc = ld_buf_detach(&b, NULL);
	struct ld_snapshot *s = parse_ok(doc);
	cr_assert_eq(s->nsites, 1);
	cr_assert_eq(s->sites[0].count, 5);
	cr_assert_eq(s->sites[0].bytes, 50);
	ld_snapshot_destroy(s);
	free(doc);
}

Test(native, unknown_addresses_keep_their_value)
{
	const char *doc = "{\"format\":\"leakdiff-native-raw\",\"version\":1,"
			  "\"modules\":[{\"path\":\"/nonexistent/libgone.so\",\"start\":4096,\"end\":8192,\"bias\":0,"
			  "\"build_id\":\"abcd\"}],"
			  "\"sites\":[[1,8,[5000,20001]]]}";
	struct ld_snapshot *s = parse_ok(doc);
	cr_assert_eq(s->nsites, 1);
	cr_assert_eq(s->sites[0].depth, 2);
	const uint32_t *st = ld_snapshot_stack(s, s->sites[0].stack);
	cr_assert_str_eq(str(s, s->frames[st[0]].function), "libgone.so+0x1387");
	cr_assert_str_eq(str(s, s->frames[st[0]].file), "/nonexistent/libgone.so");
	cr_assert_eq(s->frames[st[0]].line, 0);
	cr_assert_str_eq(str(s, s->frames[st[1]].function), "0x4e20");
	cr_assert_str_eq(str(s, s->frames[st[1]].file), "");
	ld_snapshot_destroy(s);
}

Test(native, build_id_mismatch_gives_addresses_only)
{
	int line;
	uintptr_t ra = static_caller(&line);
	struct ld_buf b;
	ld_buf_init(&b);
	ld_buf_puts(&b, "{\"format\":\"leakdiff-native-raw\",\"version\":1,");
	/* A build ID the file on disk does not have: it was replaced. */
	put_modules_claiming(&b, "0123456789abcdef0123456789abcdef01234567");
	ld_buf_printf(&b, ",\"sites\":[[1,1,[%llu]]]}", (unsigned long long)ra);
	char *doc = ld_buf_detach(&b, NULL);
	struct ld_snapshot *s = parse_ok(doc);
	const struct ld_frame *f = &s->frames[ld_snapshot_stack(s, s->sites[0].stack)[0]];
	cr_assert(strncmp(str(s, f->function), "test_native+0x", 14) == 0, "function %s", str(s, f->function));
	cr_assert_eq(f->line, 0);
	ld_snapshot_destroy(s);
	free(doc);
}

Test(native, empty_document)
{
	struct ld_snapshot *s = parse_ok("{\"format\":\"leakdiff-native-raw\",\"version\":1}");
	cr_assert_eq(s->nsites, 0);
	cr_assert_eq(s->totals.heap_bytes, 0);
	cr_assert_str_eq(s->meta.runtime, "native");
	ld_snapshot_destroy(s);
}

Test(native, sniffs_the_format)
{
	const char *raw = "{\"format\":\"leakdiff-native-raw\",\"version\":1}";
	const char *snap = "{\"format\":\"leakdiff-snapshot\",\"version\":1}";
	cr_assert(ld_native_is_raw(raw, strlen(raw)));
	cr_assert_not(ld_native_is_raw(snap, strlen(snap)));
	cr_assert_not(ld_native_is_raw("", 0));
}

/* ---------------------------------------------------------------- bad input */

Test(native, rejects_bad_documents)
{
	parse_bad("", "ends early");
	parse_bad("{\"format\":", "invalid JSON");
	parse_bad("[1,2]", "format is not");
	parse_bad("{\"format\":\"leakdiff-snapshot\",\"version\":1}", "format is not");
	parse_bad("{\"format\":\"leakdiff-native-raw\"}", "no version");
	parse_bad("{\"format\":\"leakdiff-native-raw\",\"version\":2}", "unsupported native raw snapshot version 2");
	parse_bad("{\"format\":\"leakdiff-native-raw\",\"version\":1} x", "extra data");
	parse_bad("{\"format\":\"leakdiff-native-raw\",\"version\":1,\"sites\":{}}", "sites: expected an array");
	parse_bad("{\"format\":\"leakdiff-native-raw\",\"version\":1,\"sites\":[[1,2]]}", "sites[0]: expected");
	parse_bad("{\"format\":\"leakdiff-native-raw\",\"version\":1,\"sites\":[[-1,2,[]]]}", "sites[0][0]: negative");
	parse_bad("{\"format\":\"leakdiff-native-raw\",\"version\":1,\"sites\":[[1,1e300,[]]]}", "sites[0][1]: ");
	parse_bad("{\"format\":\"leakdiff-native-raw\",\"version\":1,\"sites\":[[1,2,[1.5]]]}",
		  "sites[0][2][0]: not a whole number");
	parse_bad("{\"format\":\"leakdiff-native-raw\",\"version\":1,\"sites\":[[1,2,[\"0x10\"]]]}",
		  "sites[0][2][0]: expected a number");
	parse_bad("{\"format\":\"leakdiff-native-raw\",\"version\":1,\"sites\":[[1,2,[1e30]]]}",
		  "sites[0][2][0]: ");
	parse_bad("{\"format\":\"leakdiff-native-raw\",\"version\":1,\"modules\":[{\"path\":\"/x\",\"end\":2,\"bias\":0}]}",
		  "modules[0].start: missing");
	parse_bad("{\"format\":\"leakdiff-native-raw\",\"version\":1,\"modules\":[{\"path\":3,\"start\":1,\"end\":2,\"bias\":0}]}",
		  "modules[0].path: expected a string");
	parse_bad("{\"format\":\"leakdiff-native-raw\",\"version\":1,\"modules\":[{\"path\":\"/x\",\"start\":9,\"end\":2,\"bias\":0}]}",
		  "start is not below end");
	parse_bad("{\"format\":\"leakdiff-native-raw\",\"version\":1,\"modules\":["
		  "{\"path\":\"/a\",\"start\":0,\"end\":100,\"bias\":0},{\"path\":\"/b\",\"start\":50,\"end\":150,\"bias\":0}]}",
		  "overlap");
	parse_bad("{\"format\":\"leakdiff-native-raw\",\"version\":1,\"meta\":{\"pid\":\"x\"}}", "meta.pid: expected a number");
	parse_bad("{\"format\":\"leakdiff-native-raw\",\"version\":1,\"meta\":[]}", "meta: expected an object");
	parse_bad("{\"format\":\"leakdiff-native-raw\",\"version\":1,\"totals\":{\"heap_bytes\":-4}}", "totals.heap_bytes");
}

Test(native, rejects_deep_nesting_and_long_stacks)
{
	struct ld_buf b;
	ld_buf_init(&b);
	ld_buf_puts(&b, "{\"format\":\"leakdiff-native-raw\",\"version\":1,\"x\":");
	for (int i = 0; i < 100; i++)
		ld_buf_putc(&b, '[');
	for (int i = 0; i < 100; i++)
		ld_buf_putc(&b, ']');
	ld_buf_putc(&b, '}');
	char *deep = ld_buf_detach(&b, NULL);
	parse_bad(deep, "nested deeper");
	free(deep);

	ld_buf_init(&b);
	ld_buf_puts(&b, "{\"format\":\"leakdiff-native-raw\",\"version\":1,\"sites\":[[1,1,[");
	for (int i = 0; i < LD_DEPTH_MAX + 1; i++)
		ld_buf_printf(&b, "%s%d", i ? "," : "", i + 1);
	ld_buf_puts(&b, "]]]}");
	char *longer = ld_buf_detach(&b, NULL);
	parse_bad(longer, "longer than 1024");
	free(longer);
}

/* ---------------------------------------------------------------- symbolizer */

static int count_frames(void *ctx, const struct ld_symbol *sym)
{
	(void)sym;
	(*(int *)ctx)++;
	return 0;
}

Test(symbolize, caches_and_refuses_conflicting_modules)
{
	struct ld_module m = { .path = "/nonexistent/a.so", .start = 0x1000, .end = 0x2000 };
	struct ld_symbolizer *s = NULL;
	struct ld_error err = { { 0 } };
	cr_assert_eq(ld_symbolizer_create(&m, 1, &s, &err), 0, "%s", err.msg);
	int n = 0;
	cr_assert_eq(ld_symbolizer_lookup(s, 0x1800, count_frames, &n), 0);
	cr_assert_eq(ld_symbolizer_lookup(s, 0x1800, count_frames, &n), 0);
	cr_assert_eq(n, 2);
	/* The same module again is fine; another one in its place is not. */
	cr_assert_eq(ld_symbolizer_add(s, &m, 1, &err), 0);
	struct ld_module other = { .path = "/nonexistent/b.so", .start = 0x1800, .end = 0x3000 };
	cr_assert_eq(ld_symbolizer_add(s, &other, 1, &err), -EEXIST);
	struct ld_module next = { .path = "/nonexistent/c.so", .start = 0x3000, .end = 0x4000 };
	cr_assert_eq(ld_symbolizer_add(s, &next, 1, &err), 0);
	ld_symbolizer_destroy(s);
}

static void check_strip(const char *in, const char *want)
{
	char buf[256];
	snprintf(buf, sizeof(buf), "%s", in);
	ld_symbolize_strip_signature(buf);
	cr_assert_str_eq(buf, want, "strip(%s)", in);
}

Test(symbolize, strips_signatures)
{
	check_strip("shop::PriceCache::remember(int, int)", "shop::PriceCache::remember");
	check_strip("ns::C::get() const", "ns::C::get");
	check_strip("ns::C::take() &&", "ns::C::take");
	check_strip("std::map<int, std::string>::operator[](int const&)", "std::map<int, std::string>::operator[]");
	check_strip("int ns::f<int>(int)", "ns::f<int>");
	check_strip("std::vector<int, std::allocator<int> > ns::make<int>()", "ns::make<int>");
	check_strip("main::{lambda(int)#1}::operator()(int) const", "main::{lambda(int)#1}::operator()");
	check_strip("(anonymous namespace)::helper(void (*)(int))", "(anonymous namespace)::helper");
	check_strip("foo[abi:cxx11](int)", "foo");
	check_strip("operator new(unsigned long)", "operator new");
	check_strip("plain_c_name", "plain_c_name");
	check_strip("bool ns::operator< <int>(ns::X<int> const&, ns::X<int> const&)", "ns::operator< <int>");
}
