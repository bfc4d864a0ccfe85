// std::map workload with a slow leak, for the native profiler columns.
//
//   mapwork [-n OPS]
//
// A map from integer ids to records (a std::string name and a small
// std::vector) is kept at about 20,000 entries: every operation inserts a
// new record and erases an old one, so most of the time goes to node and
// string allocation.  One insertion in 512 also goes into a second map that
// is never trimmed nor freed (a growing cache: the leak, still live at exit).
// Prints a checksum.
//
// Build: c++ -O2 -o mapwork mapwork.cpp
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <vector>

struct Record {
	std::string name;
	std::vector<int> values;
};

static uint64_t rng_state = 88172645463325252ull;

static inline uint64_t next_rand()
{
	// xorshift64
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

__attribute__((noinline)) static Record make_record(uint64_t id, uint64_t r)
{
	Record rec;
	rec.name = "customer-" + std::to_string(id) + "-session-" + std::to_string(r % 100000);
	rec.values.resize(1 + r % 12, static_cast<int>(id));
	return rec;
}

int main(int argc, char **argv)
{
	long ops = 1000000;
	for (int i = 1; i < argc; i++) {
		if (std::strcmp(argv[i], "-n") == 0 && i + 1 < argc) {
			ops = std::atol(argv[++i]);
		} else {
			std::fprintf(stderr, "usage: mapwork [-n OPS]\n");
			return 2;
		}
	}
	const uint64_t live = 20000;
	std::map<uint64_t, Record> table;
	// Never trimmed, and never freed: still live when the program exits.
	auto &cache = *new std::map<uint64_t, std::string>;
	uint64_t sum = 0;
	for (long i = 0; i < ops; i++) {
		uint64_t id = static_cast<uint64_t>(i);
		uint64_t r = next_rand();
		table.emplace(id, make_record(id, r));
		if (id >= live) {
			auto it = table.find(id - live);
			if (it != table.end()) {
				sum += it->second.name.size() + it->second.values.size();
				table.erase(it);
			}
		}
		if ((r & 511) == 3)
			cache.emplace(id, table.rbegin()->second.name);
	}
	std::printf("mapwork: %ld ops, %zu live, %zu cached, checksum %llu\n", ops, table.size(),
		    cache.size(), static_cast<unsigned long long>(sum));
	return 0;
}
