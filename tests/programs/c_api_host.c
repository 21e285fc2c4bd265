/* c_api_host: a C program that links libsleuth.so (not preloaded) and drives
 * it through sleuth.h. Prints each call's result code; the integration tests
 * check them, including as a setuid program, where sleuth_start must refuse. */
#include <sleuth/sleuth.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

int main(void) {
  int start = sleuth_start(NULL);
  printf("start %d (%s)\n", start, sleuth_strerror(start));
  if (start == SLEUTH_OK) {
    int bad = sleuth_dump("bogus", NULL);
    int dump = sleuth_dump("threads", "c api test");
    /* The dump runs on the agent's own thread. Its signal cuts a sleep short
     * (EINTR, as with any signal-based sampler), so sleep until the time is
     * really up. */
    struct timespec left = {0, 500 * 1000 * 1000};
    while (nanosleep(&left, &left) != 0) {
    }
    int again = sleuth_start(NULL);
    int stop = sleuth_stop();
    int stop_again = sleuth_stop();
    printf("bogus %d dump %d restart %d stop %d stop_again %d\n", bad, dump, again, stop,
           stop_again);
  }
  return 0;
}
