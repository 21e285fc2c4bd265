// The interfaces' out-of-line members, compiled into both libsleuth.so and
// libsleuth-net.so (each side has its own copy of the vtables' anchors;
// nothing crosses the boundary by typeinfo).
#include "net_services.h"

namespace sleuth::agent {

AgentMetrics::~AgentMetrics() = default;
UploadService::~UploadService() = default;
NetServices::~NetServices() = default;

}  // namespace sleuth::agent
