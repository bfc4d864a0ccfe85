/*
 * Address to source location with libdwfl; see symbolize.h.
 *
 * Each module is reported to libdwfl with its file and load bias. For an
 * address, the compilation unit's line table gives the innermost file and
 * line; dwarf_getscopes() finds the innermost scope and dwarf_getscopes_die()
 * the concrete chain of scopes around it (dwarf_getscopes alone continues
 * into the abstract origin of an inlined function, not into its caller).
 * Walking that chain outwards, each inlined_subroutine yields a frame and
 * hands its DW_AT_call_file/DW_AT_call_line to the next one, up to the
 * subprogram. Without DWARF the ELF symbol table (.symtab when present,
 * which covers static functions) names the function.
 *
 * Two indexes are built per module on first need, because libdwfl's own
 * lookups are slow or missing in common cases: the symbol table sorted by
 * address (dwfl_module_addrinfo scans every symbol per call) and the units'
 * address ranges for files without .debug_aranges (Clang's default), which
 * dwfl_module_addrdie cannot search.
 */
#include "symbolize.h"

#include <dwarf.h>
#include <elfutils/libdw.h>
#include <elfutils/libdwfl.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "array.h"
#include "hashmap.h"
#include "strtab.h"

/* From libstdc++ (the C++ ABI); declared here so this file stays C. */
extern char *__cxa_demangle(const char *mangled, char *buf, size_t *len, int *status);

/* One address range of a compilation unit, for files without .debug_aranges. */
struct cu_range {
	Dwarf_Addr lo, hi;
	Dwarf_Die die;
};

/* One function of an ELF symbol table, at run-time addresses. */
struct sym_range {
	uint64_t lo, hi;
	const char *name; /* in the ELF file's string table, owned by libdwfl */
	int rank;         /* binding: 0 global, 1 weak, 2 local (aliases prefer 0) */
};

struct mod {
	char *path;
	char *build_id;
	uint64_t start, end, offset, bias;
	Dwfl_Module *dm; /* NULL when the file could not be used */
	struct cu_range *cus; /* sorted by lo; built on first need */
	size_t ncus;
	Dwarf_Addr cu_bias;
	bool cus_built;
	struct sym_range *syms; /* sorted by lo, then rank; built on first need */
	size_t nsyms;
	bool syms_built;
	int symtab_only; /* -1 not known yet; see symtab_only() */
};

/* One frame of a cached address. */
struct rec {
	uint32_t file, function, comp_dir; /* string indices; comp_dir may be LD_NOSTR */
	int32_t line, function_line;
	bool inlined;
};

struct entry {
	uint64_t pc;
	uint32_t first, count; /* recs[first .. first+count) */
};

struct ld_symbolizer {
	Dwfl *dwfl;
	struct mod *mods; /* sorted by start, never overlapping */
	size_t nmods, mods_cap;
	struct ld_strtab strings;
	struct rec *recs;
	size_t nrecs, recs_cap;
	struct entry *entries;
	size_t nentries, entries_cap;
	struct ld_hashmap index; /* pc hash -> entry */
};

static char *debuginfo_path;

static const Dwfl_Callbacks callbacks = {
	.find_elf = dwfl_build_id_find_elf,
	.find_debuginfo = dwfl_standard_find_debuginfo,
	.section_address = dwfl_offline_section_address,
	.debuginfo_path = &debuginfo_path,
};

/* ------------------------------------------------------------ names */

/* Skips a balanced group that ends at s[*i] (one of ")>]}"), scanning left. */
static void skip_group_left(const char *s, size_t *i)
{
	int depth = 0;
	for (;;) {
		char c = s[*i];
		if (c == ')' || c == '>' || c == ']' || c == '}')
			depth++;
		else if (c == '(' || c == '<' || c == '[' || c == '{')
			depth--;
		if (depth == 0 || *i == 0)
			return;
		(*i)--;
	}
}

static bool ends_with(const char *s, size_t len, const char *suffix)
{
	size_t n = strlen(suffix);
	return len >= n && memcmp(s + len - n, suffix, n) == 0;
}

static bool ident_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

/* Length of "operator" plus the operator spelled after it at s, or 0. */
static size_t operator_len(const char *s, size_t at)
{
	if (strncmp(s + at, "operator", 8) != 0 || (at && ident_char(s[at - 1])) || ident_char(s[at + 8]))
		return 0;
	size_t i = at + 8;
	if (s[i] == '(' && s[i + 1] == ')')
		return i + 2 - at;
	if (s[i] == '[' && s[i + 1] == ']')
		return i + 2 - at;
	while (s[i] && strchr("<>=!+-*/%^&|~,", s[i]))
		i++;
	return i - at;
}

void ld_symbolize_strip_signature(char *s)
{
	size_t len = strlen(s);
	/* ABI tags: "f[abi:cxx11](int)" */
	for (char *tag; (tag = strstr(s, "[abi:"));) {
		char *close = strchr(tag, ']');
		if (!close)
			break;
		memmove(tag, close + 1, strlen(close + 1) + 1);
	}
	len = strlen(s);
	/* Qualifiers after the parameter list. */
	for (bool again = true; again;) {
		again = false;
		static const char *const quals[] = { " const", " volatile", " &&", " &", "&&", "&",
						     " noexcept", " transaction_safe" };
		for (size_t q = 0; q < sizeof(quals) / sizeof(quals[0]); q++) {
			if (len && s[len - 1] != ')' && ends_with(s, len, quals[q])) {
				len -= strlen(quals[q]);
				s[len] = '\0';
				again = true;
			}
		}
	}
	if (!len || s[len - 1] != ')')
		return; /* not a function signature */
	size_t i = len - 1;
	skip_group_left(s, &i);
	if (s[i] != '(' || i == 0)
		return;
	/* "operator()" itself ends in "()": keep it when that is the name. */
	s[i] = '\0';
	len = i;

	/*
	 * Template functions carry their return type: "int ns::f<int>". Find
	 * the first space outside any brackets, not the one in "operator new"
	 * or a conversion operator; what precedes it is the return type.
	 */
	if (!len || s[len - 1] != '>')
		return;
	int depth = 0;
	for (size_t k = 0; k < len; k++) {
		size_t op = operator_len(s, k);
		if (op) {
			k += op - 1;
			continue;
		}
		char c = s[k];
		if (c == '(' || c == '<' || c == '[' || c == '{')
			depth++;
		else if ((c == ')' || c == '>' || c == ']' || c == '}') && depth > 0)
			depth--;
		else if (c == ' ' && depth == 0) {
			memmove(s, s + k + 1, len - k);
			return;
		}
	}
}

/* ------------------------------------------------------------ paths */

/*
 * path made relative to dir when it lies below it, with "." and "x/.."
 * components folded (leading ".." kept), into out.
 */
static void relative_path(const char *path, const char *dir, char *out, size_t cap)
{
	size_t dl = dir ? strlen(dir) : 0;
	while (dl > 1 && dir[dl - 1] == '/')
		dl--;
	const char *rel = path;
	if (dl && strncmp(path, dir, dl) == 0 && path[dl] == '/')
		rel = path + dl + 1;
	/* Fold components of rel into out. */
	size_t n = 0, floor = 0; /* out[0..floor) is leading "../" that cannot fold */
	if (rel[0] == '/') {
		out[n++] = '/';
		floor = 1;
	}
	const char *p = rel;
	while (*p) {
		while (*p == '/')
			p++;
		if (!*p)
			break;
		size_t cl = strcspn(p, "/");
		if (cl == 1 && p[0] == '.') {
			/* skip */
		} else if (cl == 2 && p[0] == '.' && p[1] == '.' && n > floor) {
			/* drop the last component */
			while (n > floor && out[n - 1] == '/')
				n--;
			while (n > floor && out[n - 1] != '/')
				n--;
		} else {
			if (n + cl + 2 > cap)
				break;
			if (n && out[n - 1] != '/')
				out[n++] = '/';
			memcpy(out + n, p, cl);
			n += cl;
			if (cl == 2 && p[0] == '.' && p[1] == '.')
				floor = n;
		}
		p += cl;
	}
	while (n > floor && n > 1 && out[n - 1] == '/')
		n--;
	out[n] = '\0';
	if (!n)
		snprintf(out, cap, "%s", path);
}

/* ------------------------------------------------------------ modules */

static void mod_free(struct mod *m)
{
	free(m->path);
	free(m->build_id);
	free(m->cus);
	free(m->syms);
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* True when the module's file has the build ID the process had. */
static bool build_id_matches(Dwfl_Module *dm, const char *want)
{
	if (!want || !*want)
		return true;
	const unsigned char *bits;
	GElf_Addr vaddr;
	int n = dwfl_module_build_id(dm, &bits, &vaddr);
	if (n <= 0)
		return true; /* the file has none: nothing to compare */
	if (strlen(want) != (size_t)n * 2)
		return false;
	for (int i = 0; i < n; i++) {
		int hi = hexval(want[2 * i]), lo = hexval(want[2 * i + 1]);
		if (hi < 0 || lo < 0 || (unsigned)(hi * 16 + lo) != bits[i])
			return false;
	}
	return true;
}

/* The module of mods[0..n) (sorted) holding pc, or NULL. */
static struct mod *find_mod(struct mod *mods, size_t n, uint64_t pc)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (pc < mods[mid].start)
			hi = mid;
		else if (pc >= mods[mid].end)
			lo = mid + 1;
		else
			return &mods[mid];
	}
	return NULL;
}

static int cmp_mod(const void *a, const void *b)
{
	const struct mod *x = a, *y = b;
	return x->start < y->start ? -1 : x->start > y->start;
}

static bool same_mod(const struct mod *m, const struct ld_module *d)
{
	return m->start == d->start && m->end == d->end && m->bias == d->bias && strcmp(m->path, d->path) == 0;
}

int ld_symbolizer_add(struct ld_symbolizer *s, const struct ld_module *mods, size_t n, struct ld_error *err)
{
	/* Check everything first so that a refusal changes nothing. */
	size_t fresh = 0;
	for (size_t i = 0; i < n; i++) {
		const struct ld_module *d = &mods[i];
		if (!d->path || d->start >= d->end)
			return ld_error_set(err, EINVAL, "module %zu has no path or an empty address range", i);
		const struct mod *hit = find_mod(s->mods, s->nmods, d->start);
		bool known = hit && same_mod(hit, d);
		if (!known) {
			for (size_t k = 0; k < s->nmods; k++)
				if (d->start < s->mods[k].end && s->mods[k].start < d->end)
					return ld_error_set(err, EEXIST, "module %s overlaps %s", d->path, s->mods[k].path);
			for (size_t k = 0; k < i; k++)
				if (d->start < mods[k].end && mods[k].start < d->end &&
				    !(mods[k].start == d->start && mods[k].end == d->end))
					return ld_error_set(err, EINVAL, "modules %s and %s overlap", mods[k].path, d->path);
			fresh++;
		}
	}
	if (!fresh)
		return 0;
	if (LD_ARRAY_RESERVE(s->mods, s->mods_cap, s->nmods + fresh) < 0)
		return ld_error_set(err, ENOMEM, "out of memory");
	size_t first_new = s->nmods;
	for (size_t i = 0; i < n; i++) {
		const struct ld_module *d = &mods[i];
		const struct mod *hit = find_mod(s->mods, first_new, d->start);
		bool dup = false;
		for (size_t k = first_new; k < s->nmods; k++)
			dup |= s->mods[k].start == d->start;
		if ((hit && same_mod(hit, d)) || dup)
			continue;
		struct mod m = { .start = d->start, .end = d->end, .offset = d->offset, .bias = d->bias,
				 .symtab_only = -1 };
		m.path = strdup(d->path);
		m.build_id = d->build_id ? strdup(d->build_id) : NULL;
		if (!m.path || (d->build_id && !m.build_id)) {
			mod_free(&m);
			while (s->nmods > first_new)
				mod_free(&s->mods[--s->nmods]);
			return ld_error_set(err, ENOMEM, "out of memory");
		}
		s->mods[s->nmods++] = m;
	}

	/* Report the new files to libdwfl; one that fails stays address-only. */
	dwfl_report_begin_add(s->dwfl);
	for (size_t k = first_new; k < s->nmods; k++) {
		struct mod *m = &s->mods[k];
		if (m->path[0] != '/')
			continue; /* [vdso] and the like: no file to read */
		/* Only regular files: a FIFO named in the document would block open(). */
		struct stat st;
		if (stat(m->path, &st) < 0 || !S_ISREG(st.st_mode))
			continue;
		m->dm = dwfl_report_elf(s->dwfl, m->path, m->path, -1, m->bias, false);
	}
	dwfl_report_end(s->dwfl, NULL, NULL);
	for (size_t k = first_new; k < s->nmods; k++)
		if (s->mods[k].dm && !build_id_matches(s->mods[k].dm, s->mods[k].build_id))
			s->mods[k].dm = NULL;
	if (s->nmods)
		qsort(s->mods, s->nmods, sizeof(*s->mods), cmp_mod);
	return 0;
}

int ld_symbolizer_create(const struct ld_module *mods, size_t n, struct ld_symbolizer **out,
			 struct ld_error *err)
{
	struct ld_symbolizer *s = calloc(1, sizeof(*s));
	if (!s)
		return ld_error_set(err, ENOMEM, "out of memory");
	ld_strtab_init(&s->strings);
	ld_hashmap_init(&s->index);
	s->dwfl = dwfl_begin(&callbacks);
	if (!s->dwfl) {
		ld_symbolizer_destroy(s);
		return ld_error_set(err, ENOMEM, "cannot start libdwfl: %s", dwfl_errmsg(-1));
	}
	int r = ld_symbolizer_add(s, mods, n, err); /* cannot be -EEXIST: nothing is known yet */
	if (r < 0) {
		ld_symbolizer_destroy(s);
		return r;
	}
	*out = s;
	return 0;
}

void ld_symbolizer_destroy(struct ld_symbolizer *s)
{
	if (!s)
		return;
	if (s->dwfl)
		dwfl_end(s->dwfl);
	for (size_t i = 0; i < s->nmods; i++)
		mod_free(&s->mods[i]);
	free(s->mods);
	ld_strtab_finish(&s->strings);
	free(s->recs);
	free(s->entries);
	ld_hashmap_finish(&s->index);
	free(s);
}

/* ------------------------------------------------------------ lookup */

static int intern(struct ld_symbolizer *s, const char *str, uint32_t *idx)
{
	int r = ld_strtab_intern(&s->strings, str, strlen(str), idx);
	return r == -E2BIG ? -ENOMEM : r;
}

static int push_rec(struct ld_symbolizer *s, const char *file, int line, const char *function,
		    int function_line, const char *comp_dir, bool inlined)
{
	struct rec r = { .line = line < 0 ? 0 : line, .function_line = function_line < 0 ? -1 : function_line,
			 .inlined = inlined, .comp_dir = LD_NOSTR };
	if (LD_ARRAY_RESERVE(s->recs, s->recs_cap, s->nrecs + 1) < 0)
		return -ENOMEM;
	int e;
	if ((e = intern(s, file ? file : "", &r.file)) < 0 ||
	    (e = intern(s, function ? function : "??", &r.function)) < 0 ||
	    (comp_dir && (e = intern(s, comp_dir, &r.comp_dir)) < 0))
		return e;
	s->recs[s->nrecs++] = r;
	return 0;
}

/* The function name of a subprogram or inlined_subroutine DIE, or NULL. */
static const char *die_function(Dwarf_Die *die, char **owned)
{
	Dwarf_Attribute a;
	const char *link = dwarf_formstring(dwarf_attr_integrate(die, DW_AT_linkage_name, &a));
	if (!link)
		link = dwarf_formstring(dwarf_attr_integrate(die, DW_AT_MIPS_linkage_name, &a));
	if (link && link[0] == '_' && link[1] == 'Z') {
		int status = -1;
		char *d = __cxa_demangle(link, NULL, NULL, &status);
		if (d && status == 0) {
			ld_symbolize_strip_signature(d);
			*owned = d;
			return d;
		}
		free(d);
	}
	const char *name = dwarf_formstring(dwarf_attr_integrate(die, DW_AT_name, &a));
	return name ? name : link;
}

static int cmp_sym(const void *a, const void *b)
{
	const struct sym_range *x = a, *y = b;
	if (x->lo != y->lo)
		return x->lo < y->lo ? -1 : 1;
	return x->rank - y->rank;
}

/*
 * Sorts the module's function symbols by address. dwfl_module_addrinfo()
 * walks the whole symbol table on every call, which for a program with
 * tens of thousands of functions costs milliseconds per address.
 */
static void index_symbols(struct mod *m)
{
	m->syms_built = true;
	int n = dwfl_module_getsymtab(m->dm);
	size_t cap = 0;
	for (int i = 1; i < n; i++) {
		GElf_Sym sym;
		GElf_Addr addr;
		GElf_Word shndx;
		const char *name = dwfl_module_getsym_info(m->dm, i, &sym, &addr, &shndx, NULL, NULL);
		int type = GELF_ST_TYPE(sym.st_info), bind = GELF_ST_BIND(sym.st_info);
		if (!name || !*name || shndx == SHN_UNDEF || (type != STT_FUNC && type != STT_GNU_IFUNC))
			continue;
		if (LD_ARRAY_RESERVE(m->syms, cap, m->nsyms + 1) < 0)
			break; /* out of memory: what was indexed still helps */
		m->syms[m->nsyms++] = (struct sym_range){
			.lo = addr, .hi = addr + sym.st_size, .name = name,
			.rank = bind == STB_GLOBAL ? 0 : bind == STB_WEAK ? 1 : 2 };
	}
	if (m->nsyms)
		qsort(m->syms, m->nsyms, sizeof(*m->syms), cmp_sym);
	/* A symbol without a size reaches to the next one. */
	for (size_t i = 0; i < m->nsyms; i++) {
		if (m->syms[i].hi > m->syms[i].lo)
			continue;
		size_t k = i + 1;
		while (k < m->nsyms && m->syms[k].lo == m->syms[i].lo)
			k++;
		m->syms[i].hi = k < m->nsyms ? m->syms[k].lo : m->syms[i].lo + 1;
	}
}

/* The symbol table's function at pc, or NULL. */
static const char *symbol_at(struct mod *m, uint64_t pc)
{
	if (!m->syms_built)
		index_symbols(m);
	size_t lo = 0, hi = m->nsyms;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (m->syms[mid].lo <= pc)
			lo = mid + 1;
		else
			hi = mid;
	}
	/* Entries before lo start at or below pc; the nearest start that still
	 * covers pc wins, and among aliases at one address the first (global). */
	for (size_t i = lo; i-- > 0;) {
		if (pc < m->syms[i].hi) {
			while (i > 0 && m->syms[i - 1].lo == m->syms[i].lo && pc < m->syms[i - 1].hi)
				i--;
			return m->syms[i].name;
		}
		if (lo - i > 16)
			break;
	}
	return NULL;
}

/*
 * A symbol table name, demangled and stripped, and without the symbol
 * version some carry ("__libc_start_main@@GLIBC_2.34": the version says
 * nothing of the function and differs between builds); in *owned when it
 * had to be copied.
 */
static const char *symtab_function(struct mod *m, uint64_t pc, char **owned)
{
	const char *name = symbol_at(m, pc);
	if (!name)
		return NULL;
	const char *at = strchr(name, '@');
	char *bare = NULL;
	if (at && at > name && (bare = strndup(name, (size_t)(at - name))))
		name = bare;
	if (name[0] == '_' && name[1] == 'Z') {
		int status = -1;
		char *d = __cxa_demangle(name, NULL, NULL, &status);
		if (d && status == 0) {
			ld_symbolize_strip_signature(d);
			free(bare);
			*owned = d;
			return d;
		}
		free(d);
	}
	*owned = bare;
	return name;
}

static int decl_line(Dwarf_Die *die)
{
	int line;
	return dwarf_decl_line(die, &line) == 0 ? line : -1;
}

/* "libfoo.so+0x1a2b", or "0x7f..." outside every module. */
static void address_name(const struct mod *m, uint64_t pc, char *out, size_t cap)
{
	if (!m) {
		snprintf(out, cap, "0x%" PRIx64, pc);
		return;
	}
	const char *base = strrchr(m->path, '/');
	snprintf(out, cap, "%s+0x%" PRIx64, base ? base + 1 : m->path, pc - m->bias);
}

/* Frames from DWARF; returns how many were pushed (0: no usable DWARF). */
/*
 * Whether file names from this unit say nothing useful: a library installed
 * in a system directory whose debug information was built with its source
 * prefix mapped away (a relative DW_AT_comp_dir, as distribution packages
 * do). Its frames then name the library file instead, without a line, so
 * that they look the same whether or not debug packages are installed and
 * the report can tell them from the program's own code.
 */
static bool in_system_dir(const char *path)
{
	static const char *const dirs[] = { "/usr/lib/", "/lib/", "/usr/lib64/", "/lib64/" };
	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++)
		if (strncmp(path, dirs[i], strlen(dirs[i])) == 0)
			return true;
	return false;
}

static bool anonymous_sources(const struct mod *m, const char *comp_dir)
{
	return !(comp_dir && comp_dir[0] == '/') && in_system_dir(m->path);
}

/*
 * A library in a system directory whose file carries no DWARF of its own:
 * its debug information, if any, is a distribution's separate debug file,
 * built with the source prefix mapped away, so its frames would be
 * anonymous anyway (see anonymous_sources()). They are named from the
 * symbol table without opening that file: inflating the compressed debug
 * information of glibc alone (libc6-dbg) cost 70 ms per recording, and the
 * frames come out the same whether or not debug packages are installed.
 */
static bool symtab_only(struct mod *m)
{
	if (m->symtab_only >= 0)
		return m->symtab_only;
	bool only = in_system_dir(m->path);
	GElf_Addr bias;
	Elf *elf = only ? dwfl_module_getelf(m->dm, &bias) : NULL;
	size_t shstrndx;
	if (elf && elf_getshdrstrndx(elf, &shstrndx) == 0) {
		for (Elf_Scn *scn = elf_nextscn(elf, NULL); scn && only; scn = elf_nextscn(elf, scn)) {
			GElf_Shdr shdr;
			const char *name = gelf_getshdr(scn, &shdr) ? elf_strptr(elf, shstrndx, shdr.sh_name) : NULL;
			if (name && (strcmp(name, ".debug_info") == 0 || strcmp(name, ".zdebug_info") == 0))
				only = false;
		}
	}
	m->symtab_only = only;
	return only;
}

static int cmp_cu(const void *a, const void *b)
{
	const struct cu_range *x = a, *y = b;
	return x->lo < y->lo ? -1 : x->lo > y->lo;
}

/* Indexes the address ranges of every unit of m (DW_AT_ranges or low/high). */
static void index_units(struct mod *m)
{
	m->cus_built = true;
	size_t cap = 0;
	Dwarf_Die *cu = NULL;
	Dwarf_Addr bias;
	while ((cu = dwfl_module_nextcu(m->dm, cu, &bias))) {
		m->cu_bias = bias;
		Dwarf_Addr base, lo, hi;
		for (ptrdiff_t off = 0; (off = dwarf_ranges(cu, off, &base, &lo, &hi)) > 0;) {
			if (lo >= hi)
				continue;
			if (LD_ARRAY_RESERVE(m->cus, cap, m->ncus + 1) < 0)
				goto done; /* out of memory: what was indexed still helps */
			m->cus[m->ncus++] = (struct cu_range){ .lo = lo, .hi = hi, .die = *cu };
		}
	}
done:
	if (m->ncus) /* qsort(NULL, 0, ...) is undefined */
		qsort(m->cus, m->ncus, sizeof(*m->cus), cmp_cu);
}

/*
 * The compilation unit holding pc. libdw finds it through .debug_aranges,
 * which Clang does not emit by default; then the units' own ranges are
 * searched.
 */
static Dwarf_Die *find_unit(struct mod *m, uint64_t pc, Dwarf_Addr *bias)
{
	Dwarf_Die *cu = dwfl_module_addrdie(m->dm, pc, bias);
	if (cu)
		return cu;
	if (!m->cus_built)
		index_units(m);
	uint64_t addr = pc - m->cu_bias;
	size_t lo = 0, hi = m->ncus;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (m->cus[mid].lo <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	/* lo is the first range starting above addr: check the ones before it. */
	for (size_t i = lo; i-- > 0;) {
		if (addr < m->cus[i].hi) {
			*bias = m->cu_bias;
			return &m->cus[i].die;
		}
		if (lo - i > 8)
			break; /* ranges do not nest that deep */
	}
	return NULL;
}

static int dwarf_frames(struct ld_symbolizer *s, struct mod *m, uint64_t pc, char *path_buf, size_t cap)
{
	Dwarf_Addr bias;
	Dwarf_Die *cu = find_unit(m, pc, &bias);
	if (!cu)
		return 0;
	Dwarf_Attribute a;
	const char *comp_dir = dwarf_formstring(dwarf_attr(cu, DW_AT_comp_dir, &a));
	bool anonymous = anonymous_sources(m, comp_dir);
	const char *file = NULL;
	int line = 0;
	Dwarf_Line *ln = dwarf_getsrc_die(cu, pc - bias);
	if (ln) {
		file = dwarf_linesrc(ln, NULL, NULL);
		dwarf_lineno(ln, &line);
	}
	if (anonymous)
		comp_dir = NULL;
	Dwarf_Files *files = NULL;
	size_t nfiles = 0;
	if (dwarf_getsrcfiles(cu, &files, &nfiles) != 0)
		files = NULL;

	Dwarf_Die *scopes = NULL, *chain = NULL;
	int nscopes = dwarf_getscopes(cu, pc - bias, &scopes);
	int nchain = nscopes > 0 ? dwarf_getscopes_die(&scopes[0], &chain) : 0;
	int pushed = 0, r = 0;
	bool done = false;
	for (int i = 0; i < nchain && !done && r == 0; i++) {
		Dwarf_Die *die = &chain[i];
		int tag = dwarf_tag(die);
		bool inl = tag == DW_TAG_inlined_subroutine;
		if (!inl && tag != DW_TAG_subprogram && tag != DW_TAG_entry_point)
			continue;
		char *owned = NULL;
		const char *fn = die_function(die, &owned);
		char *sym_owned = NULL;
		if (!fn && !inl)
			fn = symtab_function(m, pc, &sym_owned);
		if (anonymous)
			snprintf(path_buf, cap, "%s", m->path);
		else if (file)
			relative_path(file, comp_dir, path_buf, cap);
		/* Without a source file (a unit with no line table), the frame
		 * is named by its module, like one with no DWARF at all. */
		r = push_rec(s, anonymous || file ? path_buf : m->path, anonymous || !file ? 0 : line,
			     fn ? fn : "??", anonymous ? -1 : decl_line(die), comp_dir, inl);
		free(owned);
		free(sym_owned);
		if (r < 0)
			break;
		pushed++;
		if (!inl) {
			done = true;
			break;
		}
		/* The caller's location is where this call was inlined. */
		Dwarf_Word v;
		file = NULL;
		line = 0;
		if (files && dwarf_formudata(dwarf_attr(die, DW_AT_call_file, &a), &v) == 0 && v < nfiles)
			file = dwarf_filesrc(files, v, NULL, NULL);
		if (dwarf_formudata(dwarf_attr(die, DW_AT_call_line, &a), &v) == 0 && v <= INT32_MAX)
			line = (int)v;
	}
	if (r == 0 && !done) {
		/* No enclosing function DIE (assembly, or DWARF that ends early):
		 * the symbol table names the code at the last location found. */
		char *sym_owned = NULL;
		const char *fn = symtab_function(m, pc, &sym_owned);
		if (anonymous)
			snprintf(path_buf, cap, "%s", m->path);
		else if (file)
			relative_path(file, comp_dir, path_buf, cap);
		if (fn || pushed) {
			r = push_rec(s, anonymous || file ? path_buf : m->path, anonymous || !file ? 0 : line,
				     fn ? fn : "??", -1, comp_dir, false);
			if (r == 0)
				pushed++;
		}
		free(sym_owned);
	}
	free(scopes);
	free(chain);
	return r < 0 ? r : pushed;
}

/* Computes the frames of pc into recs and returns the new entry's index. */
static int resolve(struct ld_symbolizer *s, uint64_t pc, uint32_t *entry)
{
	if (s->nentries >= UINT32_MAX - 1 || s->nrecs >= UINT32_MAX - 64)
		return -ENOMEM;
	if (LD_ARRAY_RESERVE(s->entries, s->entries_cap, s->nentries + 1) < 0)
		return -ENOMEM;
	size_t first = s->nrecs;
	struct mod *m = find_mod(s->mods, s->nmods, pc);
	char path_buf[4096];
	int r = 0;
	if (m && m->dm && !symtab_only(m))
		r = dwarf_frames(s, m, pc, path_buf, sizeof(path_buf));
	if (r == 0) {
		char name[512];
		char *owned = NULL;
		const char *fn = m && m->dm ? symtab_function(m, pc, &owned) : NULL;
		if (!fn) {
			address_name(m, pc, name, sizeof(name));
			fn = name;
		}
		r = push_rec(s, m ? m->path : "", 0, fn, -1, NULL, false);
		free(owned);
	}
	if (r < 0) {
		s->nrecs = first;
		return r;
	}
	uint32_t idx = (uint32_t)s->nentries;
	if (ld_hashmap_insert(&s->index, ld_hash_mix(0, pc), idx) < 0) {
		s->nrecs = first;
		return -ENOMEM;
	}
	s->entries[s->nentries++] = (struct entry){ .pc = pc, .first = (uint32_t)first,
						    .count = (uint32_t)(s->nrecs - first) };
	*entry = idx;
	return 0;
}

int ld_symbolizer_lookup(struct ld_symbolizer *s, uint64_t pc, ld_symbolize_cb cb, void *ctx)
{
	struct ld_hashmap_iter it = LD_HASHMAP_ITER(ld_hash_mix(0, pc));
	uint32_t v, found = UINT32_MAX;
	while (ld_hashmap_next(&s->index, &it, &v)) {
		if (s->entries[v].pc == pc) {
			found = v;
			break;
		}
	}
	if (found == UINT32_MAX) {
		int r = resolve(s, pc, &found);
		if (r < 0)
			return r;
	}
	const struct entry *e = &s->entries[found];
	for (uint32_t i = 0; i < e->count; i++) {
		const struct rec *rc = &s->recs[e->first + i];
		struct ld_symbol sym = {
			.file = ld_strtab_get(&s->strings, rc->file),
			.line = rc->line,
			.function = ld_strtab_get(&s->strings, rc->function),
			.function_line = rc->function_line,
			.comp_dir = rc->comp_dir == LD_NOSTR ? NULL : ld_strtab_get(&s->strings, rc->comp_dir),
			.inlined = rc->inlined,
		};
		int r = cb(ctx, &sym);
		if (r < 0)
			return r;
	}
	return 0;
}
