#include "sleuth/testing/pprof_oracle.h"

#include <zlib.h>

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <set>
#include <sstream>
#include <unordered_map>

#include "profile.pb.h"

namespace sleuth::testing {

namespace {

// Inflates gzip or zlib data (windowBits 15 + 32: detect the header).
bool Inflate(std::string_view in, std::string* out, std::string* error) {
  z_stream z{};
  if (inflateInit2(&z, 15 + 32) != Z_OK) {
    *error = "zlib inflateInit2 failed";
    return false;
  }
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  z.avail_in = static_cast<uInt>(in.size());
  char buf[1 << 16];
  int rc;
  do {
    z.next_out = reinterpret_cast<Bytef*>(buf);
    z.avail_out = sizeof buf;
    rc = inflate(&z, Z_NO_FLUSH);
    out->append(buf, sizeof buf - z.avail_out);
  } while (rc == Z_OK);
  inflateEnd(&z);
  if (rc != Z_STREAM_END) {
    *error = std::string("gzip data does not inflate: ") + (z.msg ? z.msg : "truncated input");
    return false;
  }
  return true;
}

std::string HexAddress(uint64_t a) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%" PRIx64, a);
  return buf;
}

class Decoder {
 public:
  explicit Decoder(const sleuth_oracle::Profile& p) : p_(p) {}

  DecodedProfile Run() {
    CheckStringTable();
    IndexTables();

    for (const auto& t : p_.sample_type()) {
      out_.sample_types.push_back(
          {Str(t.type(), "sample_type.type"), Str(t.unit(), "sample_type.unit")});
    }
    if (p_.has_period_type()) {
      out_.period_type = {Str(p_.period_type().type(), "period_type.type"),
                          Str(p_.period_type().unit(), "period_type.unit")};
    }
    out_.period = p_.period();
    out_.time_nanos = p_.time_nanos();
    out_.duration_nanos = p_.duration_nanos();
    out_.drop_frames = Str(p_.drop_frames(), "drop_frames");
    Str(p_.keep_frames(), "keep_frames");
    for (int64_t c : p_.comment()) out_.comments.push_back(Str(c, "comment"));
    if (p_.default_sample_type() != 0) {
      out_.default_sample_type = Str(p_.default_sample_type(), "default_sample_type");
      if (out_.SampleTypeIndex(out_.default_sample_type) < 0) {
        Error("default_sample_type \"" + out_.default_sample_type +
              "\" is not one of the sample types");
      }
    }
    if (p_.sample_size() > 0 && p_.sample_type_size() == 0) {
      Error("the profile has samples but no sample types");
    }
    for (int i = 0; i < p_.sample_size(); ++i) DecodeSample(i, p_.sample(i));
    out_.location_count = static_cast<size_t>(p_.location_size());
    out_.string_count = static_cast<size_t>(p_.string_table_size());
    return std::move(out_);
  }

 private:
  void Error(std::string e) { out_.errors.push_back(std::move(e)); }

  void CheckStringTable() {
    if (p_.string_table_size() == 0) {
      Error("string_table is empty (entry 0 must be \"\")");
    } else if (!p_.string_table(0).empty()) {
      Error("string_table[0] is \"" + p_.string_table(0) + "\", must be \"\"");
    }
  }

  std::string Str(int64_t index, const std::string& where) {
    if (index < 0 || index >= p_.string_table_size()) {
      if (index != 0) {
        Error(where + " string index " + std::to_string(index) + " is outside the string table (" +
              std::to_string(p_.string_table_size()) + " entries)");
      }
      return "";
    }
    return p_.string_table(static_cast<int>(index));
  }

  void IndexTables() {
    for (const auto& m : p_.mapping()) {
      std::string where = "mapping " + std::to_string(m.id());
      if (m.id() == 0) Error("a mapping has the reserved id 0");
      if (!mappings_.emplace(m.id(), &m).second) Error("duplicate " + where);
      DecodedMapping d;
      d.id = m.id();
      d.memory_start = m.memory_start();
      d.memory_limit = m.memory_limit();
      d.file_offset = m.file_offset();
      d.filename = Str(m.filename(), where + " filename");
      d.build_id = Str(m.build_id(), where + " build_id");
      d.has_functions = m.has_functions();
      if (m.memory_limit() < m.memory_start()) Error(where + " ends before it starts");
      out_.mappings.push_back(std::move(d));
    }
    for (const auto& f : p_.function()) {
      std::string where = "function " + std::to_string(f.id());
      if (f.id() == 0) Error("a function has the reserved id 0");
      if (!functions_.emplace(f.id(), &f).second) Error("duplicate " + where);
      DecodedFunction d;
      d.id = f.id();
      d.name = Str(f.name(), where + " name");
      d.system_name = Str(f.system_name(), where + " system_name");
      d.filename = Str(f.filename(), where + " filename");
      function_names_[f.id()] = d.name;
      out_.functions.push_back(std::move(d));
    }
    for (const auto& l : p_.location()) {
      std::string where = "location " + std::to_string(l.id());
      if (l.id() == 0) Error("a location has the reserved id 0");
      if (!locations_.emplace(l.id(), &l).second) Error("duplicate " + where);
      if (l.mapping_id() != 0 && mappings_.count(l.mapping_id()) == 0) {
        Error(where + " references mapping " + std::to_string(l.mapping_id()) +
              ", which does not exist");
      }
      for (const auto& line : l.line()) {
        if (functions_.count(line.function_id()) == 0) {
          Error(where + " has a line with function " + std::to_string(line.function_id()) +
                ", which does not exist");
        }
      }
    }
  }

  void DecodeSample(int index, const sleuth_oracle::Sample& s) {
    std::string where = "sample " + std::to_string(index);
    DecodedSample d;
    d.values.assign(s.value().begin(), s.value().end());
    if (s.value_size() != p_.sample_type_size()) {
      Error(where + " has " + std::to_string(s.value_size()) + " values for " +
            std::to_string(p_.sample_type_size()) + " sample types");
    }
    for (const auto& label : s.label()) {
      if (label.key() == 0) Error(where + " has a label without a key");
      std::string key = Str(label.key(), where + " label key");
      if (label.str() != 0) {
        d.labels[key].push_back(Str(label.str(), where + " label " + key));
      } else {
        d.num_labels[key].push_back(label.num());
        d.num_units[key].push_back(Str(label.num_unit(), where + " label " + key + " unit"));
      }
    }
    for (uint64_t id : s.location_id()) {
      auto it = locations_.find(id);
      if (it == locations_.end()) {
        Error(where + " references location " + std::to_string(id) + ", which does not exist");
        continue;
      }
      const sleuth_oracle::Location& l = *it->second;
      d.addresses.push_back(l.address());
      std::string file;
      if (auto m = mappings_.find(l.mapping_id()); m != mappings_.end()) {
        file = p_.string_table_size() > m->second->filename() && m->second->filename() >= 0
                   ? p_.string_table(static_cast<int>(m->second->filename()))
                   : "";
      }
      d.mapping_files.push_back(file);
      if (l.line_size() == 0) {
        d.stack.push_back(HexAddress(l.address()));
        continue;
      }
      for (const auto& line : l.line()) {
        auto f = function_names_.find(line.function_id());
        d.stack.push_back(f != function_names_.end() ? f->second : HexAddress(l.address()));
      }
    }
    out_.samples.push_back(std::move(d));
  }

  const sleuth_oracle::Profile& p_;
  DecodedProfile out_;
  std::unordered_map<uint64_t, const sleuth_oracle::Mapping*> mappings_;
  std::unordered_map<uint64_t, const sleuth_oracle::Function*> functions_;
  std::unordered_map<uint64_t, const sleuth_oracle::Location*> locations_;
  std::unordered_map<uint64_t, std::string> function_names_;
};

std::vector<FunctionValue> Sorted(const std::map<std::string, int64_t>& sums) {
  std::vector<FunctionValue> out;
  for (const auto& [name, value] : sums) out.push_back({name, value});
  std::stable_sort(out.begin(), out.end(), [](const FunctionValue& a, const FunctionValue& b) {
    return a.value > b.value;
  });
  return out;
}

int64_t ValueOf(const std::vector<FunctionValue>& top, std::string_view function) {
  for (const FunctionValue& f : top) {
    if (f.function == function) return f.value;
  }
  return 0;
}

}  // namespace

std::string DecodedSample::Label(const std::string& key) const {
  auto it = labels.find(key);
  return it == labels.end() || it->second.empty() ? "" : it->second.front();
}

int64_t DecodedSample::NumLabel(const std::string& key) const {
  auto it = num_labels.find(key);
  return it == num_labels.end() || it->second.empty() ? 0 : it->second.front();
}

std::string DecodedProfile::ErrorText() const {
  std::string out;
  for (const std::string& e : errors) {
    if (!out.empty()) out += "; ";
    out += e;
  }
  return out;
}

int DecodedProfile::SampleTypeIndex(std::string_view type) const {
  for (size_t i = 0; i < sample_types.size(); ++i) {
    if (sample_types[i].type == type) return static_cast<int>(i);
  }
  return -1;
}

int64_t DecodedProfile::Total(std::string_view type) const {
  int index = SampleTypeIndex(type);
  if (index < 0) return 0;
  int64_t total = 0;
  for (const DecodedSample& s : samples) {
    if (static_cast<size_t>(index) < s.values.size()) total += s.values[static_cast<size_t>(index)];
  }
  return total;
}

const DecodedMapping* DecodedProfile::FindMapping(std::string_view filename) const {
  for (const DecodedMapping& m : mappings) {
    if (m.filename == filename) return &m;
  }
  return nullptr;
}

DecodedProfile DecodePprof(std::string_view bytes) {
  sleuth_oracle::Profile p;
  if (!p.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    DecodedProfile out;
    out.errors.push_back("the bytes do not parse as a profile.proto Profile (" +
                         std::to_string(bytes.size()) + " bytes)");
    return out;
  }
  return Decoder(p).Run();
}

DecodedProfile DecodePprofGz(std::string_view gz_bytes) {
  std::string raw, error;
  if (!Inflate(gz_bytes, &raw, &error)) {
    DecodedProfile out;
    out.errors.push_back(error);
    return out;
  }
  return DecodePprof(raw);
}

DecodedProfile DecodePprofFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    DecodedProfile out;
    out.errors.push_back("cannot open " + path);
    return out;
  }
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (bytes.size() >= 2 && static_cast<unsigned char>(bytes[0]) == 0x1f &&
      static_cast<unsigned char>(bytes[1]) == 0x8b) {
    return DecodePprofGz(bytes);
  }
  return DecodePprof(bytes);
}

std::vector<FunctionValue> FlatTop(const DecodedProfile& profile, std::string_view sample_type) {
  int index = profile.SampleTypeIndex(sample_type);
  if (index < 0) return {};
  std::map<std::string, int64_t> sums;
  for (const DecodedSample& s : profile.samples) {
    if (s.stack.empty() || static_cast<size_t>(index) >= s.values.size()) continue;
    sums[s.stack.front()] += s.values[static_cast<size_t>(index)];
  }
  return Sorted(sums);
}

std::vector<FunctionValue> CumulativeTop(const DecodedProfile& profile,
                                         std::string_view sample_type) {
  int index = profile.SampleTypeIndex(sample_type);
  if (index < 0) return {};
  std::map<std::string, int64_t> sums;
  for (const DecodedSample& s : profile.samples) {
    if (static_cast<size_t>(index) >= s.values.size()) continue;
    std::set<std::string> seen(s.stack.begin(), s.stack.end());
    for (const std::string& f : seen) sums[f] += s.values[static_cast<size_t>(index)];
  }
  return Sorted(sums);
}

int64_t FlatValue(const DecodedProfile& profile, std::string_view sample_type,
                  std::string_view function) {
  return ValueOf(FlatTop(profile, sample_type), function);
}

int64_t CumulativeValue(const DecodedProfile& profile, std::string_view sample_type,
                        std::string_view function) {
  return ValueOf(CumulativeTop(profile, sample_type), function);
}

std::vector<const DecodedSample*> SamplesWithLabel(const DecodedProfile& profile,
                                                   std::string_view key, std::string_view value) {
  std::vector<const DecodedSample*> out;
  for (const DecodedSample& s : profile.samples) {
    auto it = s.labels.find(std::string(key));
    if (it == s.labels.end()) continue;
    if (std::find(it->second.begin(), it->second.end(), value) != it->second.end()) {
      out.push_back(&s);
    }
  }
  return out;
}

std::vector<const DecodedSample*> SamplesWithNumLabel(const DecodedProfile& profile,
                                                      std::string_view key, int64_t value) {
  std::vector<const DecodedSample*> out;
  for (const DecodedSample& s : profile.samples) {
    auto it = s.num_labels.find(std::string(key));
    if (it == s.num_labels.end()) continue;
    if (std::find(it->second.begin(), it->second.end(), value) != it->second.end()) {
      out.push_back(&s);
    }
  }
  return out;
}

}  // namespace sleuth::testing
