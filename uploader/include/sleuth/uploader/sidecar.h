// The JSON sidecar the agent writes beside every dump (<base>.json). Its
// type and parser live in sleuth::dumps, the one owner of the dump
// directory's format; the uploader uses them under its own names.
#pragma once

#include "sleuth/dumps/dump_meta.h"

namespace sleuth::uploader {

using dumps::DumpMeta;
using dumps::kMaxSidecarBytes;
using dumps::ParseSidecar;

}  // namespace sleuth::uploader
