// demo_app: a pretend service. It idles for a while, then a "bad request"
// makes it spend its CPU in an accidentally quadratic function. Run it under
// the agent (scripts/demo.sh) and the dump names the culprit.
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>

namespace {

using Clock = std::chrono::steady_clock;
volatile size_t g_result;

__attribute__((noinline)) size_t CountDuplicateWordsQuadratic(const std::string& text) {
  size_t dups = 0;
  for (size_t i = 0; i < text.size(); i++)
    for (size_t j = i + 1; j < text.size(); j++)
      if (text[i] == text[j]) dups++;
  return dups;
}

__attribute__((noinline)) void HandleBadRequest(std::chrono::seconds how_long) {
  std::string body(4000, 'a');
  for (size_t i = 0; i < body.size(); i++) body[i] = static_cast<char>('a' + i % 26);
  auto until = Clock::now() + how_long;
  while (Clock::now() < until) g_result = CountDuplicateWordsQuadratic(body);
}

__attribute__((noinline)) void ServeQuietly(std::chrono::seconds how_long) {
  auto until = Clock::now() + how_long;
  while (Clock::now() < until) std::this_thread::sleep_for(std::chrono::milliseconds(50));
}

}  // namespace

int main() {
  std::printf("demo_app: serving quietly for 2s\n");
  std::fflush(stdout);
  ServeQuietly(std::chrono::seconds(2));
  std::printf("demo_app: a bad request arrives; burning CPU for 4s\n");
  std::fflush(stdout);
  HandleBadRequest(std::chrono::seconds(4));
  std::printf("demo_app: done\n");
  return 0;
}
