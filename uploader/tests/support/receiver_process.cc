#include "receiver_process.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <nlohmann/json.hpp>

#include "sleuth/common/files.h"

#ifndef SLEUTH_UPLOADER_RECEIVER
#error "SLEUTH_UPLOADER_RECEIVER must name receiver.py"
#endif
#ifndef SLEUTH_PYTHON3
#define SLEUTH_PYTHON3 "/usr/bin/python3"
#endif

namespace sleuth::uploader::testing {
namespace {

size_t Collect(char* data, size_t size, size_t count, void* user) {
  static_cast<std::string*>(user)->append(data, size * count);
  return size * count;
}

// One blocking request to the receiver's control endpoint.
Result<std::string> Control(const std::string& base_url, const std::string& path,
                            const std::string* post_body) {
  CURL* easy = curl_easy_init();
  if (easy == nullptr) return Internal("curl_easy_init failed");
  std::string url = base_url + path;
  // The control channel trusts the test's own self-signed certificate.
  curl_easy_setopt(easy, CURLOPT_SSL_VERIFYPEER, 0L);
  curl_easy_setopt(easy, CURLOPT_SSL_VERIFYHOST, 0L);
  std::string response;
  curl_easy_setopt(easy, CURLOPT_URL, url.c_str());
  curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, 10'000L);
  curl_easy_setopt(easy, CURLOPT_NOPROXY, "*");
  curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, &Collect);
  curl_easy_setopt(easy, CURLOPT_WRITEDATA, &response);
  if (post_body != nullptr) {
    curl_easy_setopt(easy, CURLOPT_POSTFIELDS, post_body->c_str());
    curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE, static_cast<long>(post_body->size()));
  }
  CURLcode rc = curl_easy_perform(easy);
  long status = 0;
  curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_cleanup(easy);
  if (rc != CURLE_OK)
    return Unavailable(std::string("receiver control: ") + curl_easy_strerror(rc));
  if (status != 200) return Internal("receiver control answered " + std::to_string(status));
  return response;
}

}  // namespace

Result<std::unique_ptr<ReceiverProcess>> ReceiverProcess::Start(const Options& options) {
  SLEUTH_RETURN_IF_ERROR(MakeDirs(options.record_dir, 0700));
  int out[2];
  if (::pipe2(out, O_CLOEXEC) != 0) return ErrnoStatus("pipe2", errno);
  std::vector<std::string> args = {SLEUTH_PYTHON3, SLEUTH_UPLOADER_RECEIVER,
                                   "--dir",        options.record_dir,
                                   "--port",       std::to_string(options.port)};
  if (!options.save_bodies) args.push_back("--no-save-bodies");
  if (!options.script_json.empty()) {
    args.push_back("--script");
    args.push_back(options.script_json);
  }
  if (!options.tls_cert.empty()) {
    args.insert(args.end(), {"--tls-cert", options.tls_cert, "--tls-key", options.tls_key});
  }
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = ::fork();
  if (pid < 0) return ErrnoStatus("fork", errno);
  if (pid == 0) {
    ::dup2(out[1], STDOUT_FILENO);
    ::execv(SLEUTH_PYTHON3, argv.data());
    ::_exit(127);
  }
  ::close(out[1]);
  ScopedFd reader(out[0]);
  std::unique_ptr<ReceiverProcess> receiver(new ReceiverProcess());
  receiver->pid_ = pid;
  receiver->tls_ = !options.tls_cert.empty();
  receiver->record_dir_ = options.record_dir;
  std::string line;
  while (line.find('\n') == std::string::npos) {
    struct pollfd p = {reader.get(), POLLIN, 0};
    if (::poll(&p, 1, 20'000) <= 0) return Unavailable("receiver.py did not start listening");
    char buf[256];
    ssize_t n = ::read(reader.get(), buf, sizeof buf);
    if (n <= 0) return Unavailable("receiver.py exited before listening");
    line.append(buf, static_cast<size_t>(n));
  }
  if (line.rfind("PORT ", 0) != 0) return Internal("receiver.py printed: " + line);
  receiver->port_ = std::stoi(line.substr(5));
  return receiver;
}

ReceiverProcess::~ReceiverProcess() {
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    int status;
    ::waitpid(pid_, &status, 0);
  }
}

Status ReceiverProcess::Script(const std::string& json) {
  Result<std::string> r = Control(url(), "/_control/script", &json);
  return r.ok() ? Status::Ok() : r.status();
}

Result<ReceiverStats> ReceiverProcess::Stats() const {
  SLEUTH_ASSIGN_OR_RETURN(std::string text, Control(url(), "/_control/stats", nullptr));
  try {
    auto doc = nlohmann::json::parse(text);
    return ReceiverStats{doc.at("requests").get<int>(), doc.at("connections").get<int>()};
  } catch (const nlohmann::json::exception& e) {
    return Internal(std::string("receiver stats: ") + e.what());
  }
}

std::vector<RecordedRequest> ReceiverProcess::Requests() const {
  std::vector<RecordedRequest> out;
  Result<std::vector<std::string>> names = ListDir(record_dir_);
  if (!names.ok()) return out;
  for (const std::string& name : *names) {
    if (name.size() != 11 || name.substr(6) != ".json") continue;
    Result<std::string> text = ReadFile(record_dir_ + "/" + name);
    if (!text.ok()) continue;
    try {
      auto doc = nlohmann::json::parse(*text);
      RecordedRequest r;
      r.seq = doc.at("seq").get<int>();
      r.time = doc.at("time").get<double>();
      r.method = doc.at("method").get<std::string>();
      r.endpoint = doc.at("endpoint").get<std::string>();
      r.path = doc.at("path").get<std::string>();
      r.query = doc.at("query").get<std::string>();
      r.connection = doc.at("connection").get<int>();
      r.status = doc.at("status").get<int>();
      for (const auto& pair : doc.at("headers")) {
        std::string key = pair.at(0).get<std::string>();
        std::transform(key.begin(), key.end(), key.begin(),
                       [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
        r.headers[key] = pair.at(1).get<std::string>();
      }
      Result<std::string> body = ReadFile(record_dir_ + "/" + name.substr(0, 6) + ".body");
      if (body.ok()) r.body = std::move(*body);
      out.push_back(std::move(r));
    } catch (const nlohmann::json::exception&) {
      continue;
    }
  }
  std::sort(out.begin(), out.end(),
            [](const RecordedRequest& a, const RecordedRequest& b) { return a.seq < b.seq; });
  return out;
}

std::map<std::string, FormPart> ParseMultipart(const std::string& body,
                                               const std::string& content_type) {
  std::map<std::string, FormPart> parts;
  size_t at = content_type.find("boundary=");
  if (at == std::string::npos) return parts;
  std::string delimiter = "--" + content_type.substr(at + 9);
  size_t pos = body.find(delimiter);
  while (pos != std::string::npos) {
    size_t start = pos + delimiter.size();
    if (body.compare(start, 2, "--") == 0) break;  // the closing delimiter
    if (body.compare(start, 2, "\r\n") != 0) return {};
    start += 2;
    size_t next = body.find("\r\n" + delimiter, start);
    if (next == std::string::npos) return {};
    std::string part = body.substr(start, next - start);
    size_t blank = part.find("\r\n\r\n");
    if (blank == std::string::npos) return {};
    FormPart form{part.substr(0, blank), part.substr(blank + 4)};
    size_t name_at = form.headers.find("name=\"");
    if (name_at == std::string::npos) return {};
    name_at += 6;
    parts[form.headers.substr(name_at, form.headers.find('"', name_at) - name_at)] = form;
    pos = next + 2;
  }
  return parts;
}

Result<int> PickFreePort() {
  ScopedFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return ErrnoStatus("socket", errno);
  struct sockaddr_in addr = {};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    return ErrnoStatus("bind", errno);
  }
  socklen_t len = sizeof addr;
  if (::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    return ErrnoStatus("getsockname", errno);
  }
  return static_cast<int>(ntohs(addr.sin_port));
}

}  // namespace sleuth::uploader::testing
