// A C++ plugin for test_attach.py, loaded after the agent attached: its
// blocks come from operator new, which libstdc++ (loaded with it) serves
// with malloc through its own GOT; each must be counted once.
#include <cstddef>
#include <cstdlib>
#include <vector>

namespace {
std::vector<char *> *kept;
}

extern "C" __attribute__((visibility("default"))) void plugin_leak(std::size_t n, std::size_t size)
{
	if (!kept)
		kept = new std::vector<char *>;
	kept->reserve(kept->size() + n);
	for (std::size_t i = 0; i < n; i++)
		kept->push_back(new char[size]);
}

extern "C" __attribute__((visibility("default"))) void *(*plugin_malloc())(std::size_t)
{
	void *(*volatile f)(std::size_t) = std::malloc;
	return f;
}
