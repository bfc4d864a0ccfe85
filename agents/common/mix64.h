/*
 * A 64-bit mixer shared by the agents' hash tables (the native agent's live
 * table, the Python sampler's): the finaliser of MurmurHash3, under which
 * every input bit moves every output bit, so addresses that differ only in
 * their low or high bits still spread over a power-of-two table.
 */
#ifndef LD_AGENT_MIX64_H
#define LD_AGENT_MIX64_H

#include <stdint.h>

static inline uint64_t ld_mix64(uint64_t h)
{
	h ^= h >> 33;
	h *= UINT64_C(0xff51afd7ed558ccd);
	h ^= h >> 33;
	h *= UINT64_C(0xc4ceb9fe1a85ec53);
	h ^= h >> 33;
	return h;
}

#endif
