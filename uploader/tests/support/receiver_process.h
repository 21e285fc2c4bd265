// Runs uploader/tests/receiver.py (a real HTTP/1.1 server on 127.0.0.1) as a
// child process, scripts its answers and reads back what it recorded.
// Thread-compatible.
#pragma once

#include <sys/types.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "sleuth/common/status.h"

namespace sleuth::uploader::testing {

struct RecordedRequest {
  int seq = 0;
  double time = 0;  // arrival, Unix seconds
  std::string method;
  std::string endpoint;  // push | ingest | http
  std::string path;
  std::string query;
  std::map<std::string, std::string> headers;  // names lower-cased
  int connection = 0;                          // 1 for the first connection, ...
  int status = 0;                              // what the receiver answered
  std::string body;                            // empty if bodies are not saved

  std::string Header(const std::string& lower_name) const {
    auto it = headers.find(lower_name);
    return it == headers.end() ? std::string() : it->second;
  }
};

struct ReceiverStats {
  int requests = 0;
  int connections = 0;
};

class ReceiverProcess {
 public:
  struct Options {
    std::string record_dir;  // created if missing
    int port = 0;            // 0: a free one
    bool save_bodies = true;
    std::string script_json;  // initial script (see receiver.py)
    std::string tls_cert;     // PEM files: serve HTTPS
    std::string tls_key;
  };

  // Starts python3 receiver.py and waits until it listens.
  [[nodiscard]] static Result<std::unique_ptr<ReceiverProcess>> Start(const Options& options);
  ~ReceiverProcess();  // SIGKILL and reap

  int port() const { return port_; }
  std::string url() const {
    return std::string(tls_ ? "https" : "http") + "://127.0.0.1:" + std::to_string(port_);
  }

  // Replaces the answers to come, e.g.
  //   {"responses": [{"status": 500}], "default": {"status": 200}}
  [[nodiscard]] Status Script(const std::string& json);
  [[nodiscard]] Result<ReceiverStats> Stats() const;
  // Every request recorded so far, in arrival order.
  std::vector<RecordedRequest> Requests() const;

 private:
  ReceiverProcess() = default;
  pid_t pid_ = -1;
  int port_ = 0;
  bool tls_ = false;
  std::string record_dir_;
};

struct FormPart {
  std::string headers;  // the part's header lines
  std::string content;
};

// Splits a multipart/form-data body by the boundary named in
// `content_type`; parts by their name="..." parameter. Empty on malformed
// input.
std::map<std::string, FormPart> ParseMultipart(const std::string& body,
                                               const std::string& content_type);

// A TCP port on 127.0.0.1 that was free a moment ago (for a server started
// later: the "connection refused, then the server appears" case).
[[nodiscard]] Result<int> PickFreePort();

}  // namespace sleuth::uploader::testing
