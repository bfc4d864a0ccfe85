/*
 * Turning code addresses of a native process into source locations with
 * elfutils (libdwfl, libdw): function, file and line, one frame per inlined
 * call, C++ names demangled to Namespace::Class::method. The symbolizer is
 * built from the module map the native agent sent (which file was loaded
 * where) and reads those files from disk, so it must run while they still
 * match what the process had mapped; build IDs catch a file replaced since.
 * Results are cached per address, since the same return addresses appear in
 * many stacks.
 */
#ifndef LD_CORE_SYMBOLIZE_H
#define LD_CORE_SYMBOLIZE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

/* One loaded object as the agent saw it. */
struct ld_module {
	const char *path;     /* file the object was loaded from */
	uint64_t start, end;  /* its PT_LOAD segments in memory, end exclusive */
	uint64_t offset;      /* file offset of the first segment */
	uint64_t bias;        /* load bias: run-time address minus ELF address */
	const char *build_id; /* NT_GNU_BUILD_ID in hex; NULL or "" if unknown */
};

/*
 * One frame of an address. Strings belong to the symbolizer and stay valid
 * until it is destroyed.
 */
struct ld_symbol {
	/*
	 * Source file, relative to comp_dir when it lies below it (so that two
	 * checkouts built the same way give the same names); otherwise an
	 * absolute path. Without line information, the module's path; "" when
	 * the address is in no known module.
	 */
	const char *file;
	int line;          /* 0 when unknown */
	/*
	 * Qualified function name without parameters ("ns::Class::method",
	 * "main"); from DWARF, else the ELF symbol table, else
	 * "module+0xOFFSET", or "0xADDRESS" outside every module.
	 */
	const char *function;
	int function_line; /* DW_AT_decl_line of the function, -1 when unknown */
	const char *comp_dir; /* DW_AT_comp_dir of the unit, NULL without DWARF */
	bool inlined;      /* this call was inlined into the next frame */
};

/*
 * Receives the frames of one address, innermost first: for code inlined
 * into a function, the inlined function at the address, then each caller
 * it was inlined into, then the function that really holds the code.
 * A negative return stops the lookup, which returns it.
 */
typedef int (*ld_symbolize_cb)(void *ctx, const struct ld_symbol *sym);

struct ld_symbolizer;

/*
 * Creates a symbolizer for the n modules (the array and strings are
 * copied; n may be 0). Modules whose file cannot be read or whose build ID
 * differs from the file's are kept but give only "module+0xOFFSET" frames.
 * Returns 0 and stores the symbolizer in *out, which the caller destroys;
 * or -EINVAL (overlapping or empty ranges) or -ENOMEM with a reason in err.
 */
int ld_symbolizer_create(const struct ld_module *mods, size_t n, struct ld_symbolizer **out,
			 struct ld_error *err);

/*
 * Adds the modules not known yet, keeping the cache. Returns 0; -EEXIST,
 * leaving s unchanged, when one of them overlaps a known module that is not
 * the same (same path, range and bias): a library was unloaded and another
 * loaded in its place, so cached results may be wrong and the caller should
 * start a new symbolizer; -ENOMEM or -EINVAL as for create.
 */
int ld_symbolizer_add(struct ld_symbolizer *s, const struct ld_module *mods, size_t n,
		      struct ld_error *err);

/*
 * Describes the instruction at pc, calling cb once per frame (at least
 * once). For a return address pass the address minus one, so that the
 * lookup lands in the call instruction and not in whatever follows it.
 * Returns 0, a negative value from cb, or -ENOMEM.
 */
int ld_symbolizer_lookup(struct ld_symbolizer *s, uint64_t pc, ld_symbolize_cb cb, void *ctx);

/* Frees the symbolizer and every string it handed out; s may be NULL. */
void ld_symbolizer_destroy(struct ld_symbolizer *s);

/*
 * Rewrites a demangled C++ name in place to its qualified name alone,
 * dropping the parameter list, cv and ref qualifiers, ABI tags and the
 * return type of template functions: "int ns::f<int>(int) const" becomes
 * "ns::f<int>". Other names are left as they are. Exposed for tests.
 */
void ld_symbolize_strip_signature(char *name);

#endif
