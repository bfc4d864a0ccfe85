/*
 * Test program (b): a C++ class method fills a std::map that lives in a
 * heap-allocated singleton nobody deletes, so its nodes are still live at
 * exit. The allocating stack runs through shop::PriceCache::remember.
 */
#include <cstdlib>
#include <map>
#include <string>

namespace shop {

class PriceCache {
public:
	void remember(int id, int cents);
	std::size_t size() const { return prices_.size(); }

private:
	std::map<int, std::string> prices_;
};

__attribute__((noinline)) void PriceCache::remember(int id, int cents)
{
	prices_[id] = std::to_string(cents); /* CACHE-SITE */
}

} /* namespace shop */

int main(int argc, char **argv)
{
	int n = argc > 1 ? std::atoi(argv[1]) : 1000;
	static shop::PriceCache *cache = new shop::PriceCache;
	for (int i = 0; i < n; i++)
		cache->remember(i, i * 7);
	return cache->size() == static_cast<std::size_t>(n) ? 0 : 1;
}
