/* sleuth.h: the C interface of libsleuth.so.
 *
 * A process gets the agent either by preloading it
 *   LD_PRELOAD=/path/to/libsleuth.so ./app
 * (it then starts by itself, configured from SLEUTH_CONFIG and SLEUTH_*
 * variables; SLEUTH_DISABLE=1 keeps it off), or by linking libsleuth.so and
 * calling sleuth_start(). Every function is thread safe and returns 0 on
 * success or a positive SLEUTH_E* code; none is async-signal-safe.
 */
#ifndef SLEUTH_SLEUTH_H_
#define SLEUTH_SLEUTH_H_

#ifdef __cplusplus
extern "C" {
#endif

/* Error codes. sleuth_strerror() gives the text of each. */
enum {
  SLEUTH_OK = 0,
  SLEUTH_EINVAL = 1,       /* a bad argument (unknown dump kind, NULL) */
  SLEUTH_ECONFIG = 2,      /* the configuration is invalid; details are logged */
  SLEUTH_ERUNNING = 3,     /* sleuth_start: the agent is already running */
  SLEUTH_ENOTRUNNING = 4,  /* the agent is not running */
  SLEUTH_EREFUSED = 5,     /* refused to run: setuid/setgid program or SLEUTH_DISABLE */
  SLEUTH_EUNAVAILABLE = 6, /* that kind of dump cannot be taken in this process */
  SLEUTH_EBUSY = 7,        /* a dump of that kind is already queued or running */
  SLEUTH_EINTERNAL = 8     /* anything else; details are logged */
};

/* Starts the agent. config_path names a TOML file, or is NULL to use
 * SLEUTH_CONFIG if set; SLEUTH_* variables override the file either way. */
int sleuth_start(const char* config_path);

/* Stops the agent: waits up to upload.exit_grace for uploads, abandons a
 * profile in progress, and joins its threads. Safe to call when stopped. */
int sleuth_stop(void);

/* Queues a dump now, whatever the rules say. kind is "cpu", "heap",
 * "threads" or "memory"; reason is a short free text recorded in the
 * sidecar (NULL means "manual"). Returns once the dump is queued; the
 * capture runs on the agent's own thread. */
int sleuth_dump(const char* kind, const char* reason);

/* A static, human-readable text for an error code. Never NULL. */
const char* sleuth_strerror(int code);

#ifdef __cplusplus
}
#endif

#endif /* SLEUTH_SLEUTH_H_ */
