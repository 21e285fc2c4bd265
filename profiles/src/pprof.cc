#include "sleuth/profiles/pprof.h"

#include <string_view>
#include <unordered_map>
#include <vector>

#include "sleuth/common/proto_writer.h"

namespace sleuth::profiles {

namespace {

// Field numbers of profile.proto (github.com/google/pprof/proto/profile.proto).
namespace field {
constexpr uint32_t kProfileSampleType = 1;
constexpr uint32_t kProfileSample = 2;
constexpr uint32_t kProfileMapping = 3;
constexpr uint32_t kProfileLocation = 4;
constexpr uint32_t kProfileFunction = 5;
constexpr uint32_t kProfileStringTable = 6;
constexpr uint32_t kProfileTimeNanos = 9;
constexpr uint32_t kProfileDurationNanos = 10;
constexpr uint32_t kProfilePeriodType = 11;
constexpr uint32_t kProfilePeriod = 12;
constexpr uint32_t kProfileComment = 13;
constexpr uint32_t kProfileDefaultSampleType = 14;

constexpr uint32_t kValueTypeType = 1;
constexpr uint32_t kValueTypeUnit = 2;

constexpr uint32_t kSampleLocationId = 1;
constexpr uint32_t kSampleValue = 2;
constexpr uint32_t kSampleLabel = 3;

constexpr uint32_t kLabelKey = 1;
constexpr uint32_t kLabelStr = 2;
constexpr uint32_t kLabelNum = 3;
constexpr uint32_t kLabelNumUnit = 4;

constexpr uint32_t kMappingId = 1;
constexpr uint32_t kMappingMemoryStart = 2;
constexpr uint32_t kMappingMemoryLimit = 3;
constexpr uint32_t kMappingFileOffset = 4;
constexpr uint32_t kMappingFilename = 5;
constexpr uint32_t kMappingBuildId = 6;
constexpr uint32_t kMappingHasFunctions = 7;

constexpr uint32_t kLocationId = 1;
constexpr uint32_t kLocationMappingId = 2;
constexpr uint32_t kLocationAddress = 3;
constexpr uint32_t kLocationLine = 4;

constexpr uint32_t kLineFunctionId = 1;

constexpr uint32_t kFunctionId = 1;
constexpr uint32_t kFunctionName = 2;
constexpr uint32_t kFunctionSystemName = 3;
}  // namespace field

class StringTable {
 public:
  StringTable() { Intern(""); }  // index 0 must be the empty string
  int64_t Intern(std::string_view s) {
    auto it = index_.find(std::string(s));
    if (it != index_.end()) return it->second;
    int64_t id = static_cast<int64_t>(strings_.size());
    strings_.emplace_back(s);
    index_.emplace(strings_.back(), id);
    return id;
  }
  const std::vector<std::string>& strings() const { return strings_; }

 private:
  std::unordered_map<std::string, int64_t> index_;
  std::vector<std::string> strings_;
};

bool MatchesAny(const std::vector<std::string>& patterns, std::string_view name) {
  if (name.empty()) return false;
  for (const std::string& p : patterns) {
    if (!p.empty() && p.back() == '*') {
      std::string_view prefix(p.data(), p.size() - 1);
      if (name.substr(0, prefix.size()) == prefix) return true;
    } else if (name == p) {
      return true;
    }
  }
  return false;
}

Status Validate(const RawProfile& raw) {
  for (size_t i = 0; i < raw.samples.size(); ++i) {
    const RawSample& s = raw.samples[i];
    if (s.values.size() != raw.sample_types.size()) {
      return InvalidArgument("pprof: sample " + std::to_string(i) + " has " +
                             std::to_string(s.values.size()) + " values but the profile has " +
                             std::to_string(raw.sample_types.size()) +
                             " sample types; give one value per sample type");
    }
  }
  if (!raw.default_sample_type.empty()) {
    bool found = false;
    for (const ValueType& t : raw.sample_types) found = found || t.type == raw.default_sample_type;
    if (!found) {
      return InvalidArgument("pprof: default_sample_type \"" + raw.default_sample_type +
                             "\" is not one of the profile's sample types");
    }
  }
  return Status::Ok();
}

class Encoder {
 public:
  Encoder(const RawProfile& raw, Symbolizer& sym) : raw_(raw), sym_(sym) {}

  std::string Encode() {
    mapping_ids_.assign(sym_.mappings().size(), 0);
    if (sym_.main_mapping_index() >= 0) MappingId(sym_.main_mapping_index());

    ProtoWriter out;
    for (const ValueType& t : raw_.sample_types) out.Message(field::kProfileSampleType, Type(t));

    std::vector<uint64_t> stack;
    for (const RawSample& s : raw_.samples) {
      BuildStack(s, &stack);
      ProtoWriter sample;
      sample.PackedVarints(field::kSampleLocationId, stack.begin(), stack.end());
      sample.PackedVarints(field::kSampleValue, s.values.begin(), s.values.end());
      for (const Label& l : s.labels) sample.Message(field::kSampleLabel, LabelMessage(l));
      out.Message(field::kProfileSample, sample);
    }

    for (int index : emitted_mappings_) out.Message(field::kProfileMapping, MappingMessage(index));
    for (const std::string& l : locations_) out.Bytes(field::kProfileLocation, l);
    for (const std::string& f : functions_) out.Bytes(field::kProfileFunction, f);

    if (raw_.time_nanos != 0) out.Int64(field::kProfileTimeNanos, raw_.time_nanos);
    if (raw_.duration_nanos != 0) out.Int64(field::kProfileDurationNanos, raw_.duration_nanos);
    if (!raw_.period_type.type.empty()) {
      out.Message(field::kProfilePeriodType, Type(raw_.period_type));
    }
    if (raw_.period != 0) out.Int64(field::kProfilePeriod, raw_.period);
    for (const std::string& c : raw_.comments)
      out.Int64(field::kProfileComment, strings_.Intern(c));
    if (!raw_.default_sample_type.empty()) {
      out.Int64(field::kProfileDefaultSampleType, strings_.Intern(raw_.default_sample_type));
    }
    // Last, once every string has been interned.
    for (const std::string& s : strings_.strings()) out.String(field::kProfileStringTable, s);
    return out.Take();
  }

 private:
  ProtoWriter Type(const ValueType& t) {
    ProtoWriter w;
    w.Int64(field::kValueTypeType, strings_.Intern(t.type));
    w.Int64(field::kValueTypeUnit, strings_.Intern(t.unit));
    return w;
  }

  ProtoWriter LabelMessage(const Label& l) {
    ProtoWriter w;
    w.Int64(field::kLabelKey, strings_.Intern(l.key));
    if (!l.str.empty()) {
      w.Int64(field::kLabelStr, strings_.Intern(l.str));
    } else {
      w.Int64(field::kLabelNum, l.num);
      if (!l.num_unit.empty()) w.Int64(field::kLabelNumUnit, strings_.Intern(l.num_unit));
    }
    return w;
  }

  uint64_t MappingId(int index) {
    uint64_t& id = mapping_ids_[static_cast<size_t>(index)];
    if (id == 0) {
      emitted_mappings_.push_back(index);
      id = emitted_mappings_.size();
      all_named_.push_back(true);
    }
    return id;
  }

  ProtoWriter MappingMessage(int index) {
    const MappingInfo& m = sym_.LoadMapping(static_cast<size_t>(index));
    uint64_t id = mapping_ids_[static_cast<size_t>(index)];
    ProtoWriter w;
    w.Varint(field::kMappingId, id);
    w.Varint(field::kMappingMemoryStart, m.start);
    w.Varint(field::kMappingMemoryLimit, m.limit);
    w.Varint(field::kMappingFileOffset, m.file_offset);
    w.Int64(field::kMappingFilename, strings_.Intern(m.path));
    if (!m.build_id.empty()) w.Int64(field::kMappingBuildId, strings_.Intern(m.build_id));
    if (m.has_functions && all_named_[id - 1]) w.Bool(field::kMappingHasFunctions, true);
    return w;
  }

  // Functions are deduplicated by name; locations by pc (or by name for
  // synthetic frames). Their messages are kept serialized until Encode
  // writes them after the samples.
  uint64_t FunctionId(const std::string& name, const std::string& system_name) {
    auto it = function_ids_.find(name);
    if (it != function_ids_.end()) return it->second;
    uint64_t id = function_ids_.size() + 1;
    function_ids_.emplace(name, id);
    function_names_.push_back(name);
    ProtoWriter f;
    f.Varint(field::kFunctionId, id);
    f.Int64(field::kFunctionName, strings_.Intern(name));
    f.Int64(field::kFunctionSystemName, strings_.Intern(system_name.empty() ? name : system_name));
    functions_.push_back(f.Take());
    return id;
  }

  uint64_t AddLocation(uint64_t mapping_id, uint64_t address, uint64_t function_id) {
    uint64_t id = location_function_.size() + 1;
    location_function_.push_back(function_id);
    ProtoWriter l;
    l.Varint(field::kLocationId, id);
    if (mapping_id != 0) l.Varint(field::kLocationMappingId, mapping_id);
    if (address != 0) l.Varint(field::kLocationAddress, address);
    if (function_id != 0) {
      ProtoWriter line;
      line.Varint(field::kLineFunctionId, function_id);
      l.Message(field::kLocationLine, line);
    }
    locations_.push_back(l.Take());
    return id;
  }

  uint64_t PcLocation(uint64_t pc, bool return_address) {
    auto& cache = return_address ? return_locations_ : exact_locations_;
    auto it = cache.find(pc);
    if (it != cache.end()) return it->second;
    SymbolizedPc s = sym_.Lookup(return_address && pc > 0 ? pc - 1 : pc);
    uint64_t mapping_id = s.mapping_index >= 0 ? MappingId(s.mapping_index) : 0;
    uint64_t function_id = 0;
    if (!s.function.empty()) {
      function_id = FunctionId(s.function, s.system_name);
    } else if (mapping_id != 0) {
      all_named_[mapping_id - 1] = false;
    }
    uint64_t id = AddLocation(mapping_id, pc, function_id);
    cache.emplace(pc, id);
    return id;
  }

  uint64_t NameLocation(const std::string& name) {
    auto it = name_locations_.find(name);
    if (it != name_locations_.end()) return it->second;
    uint64_t id = AddLocation(0, 0, FunctionId(name, name));
    name_locations_.emplace(name, id);
    return id;
  }

  void BuildStack(const RawSample& s, std::vector<uint64_t>* stack) {
    stack->clear();
    if (!s.pcs.empty()) {
      for (size_t i = 0; i < s.pcs.size(); ++i) {
        bool return_address = i > 0 || !raw_.leaf_is_exact_pc;
        stack->push_back(PcLocation(s.pcs[i], return_address));
      }
    } else {
      for (const std::string& name : s.names) stack->push_back(NameLocation(name));
    }
    if (raw_.drop_frames.empty()) return;
    // Like pprof's drop_frames: the root-most match goes, with its callees.
    for (size_t i = stack->size(); i-- > 0;) {
      uint64_t function_id = location_function_[(*stack)[i] - 1];
      if (function_id == 0) continue;
      if (MatchesAny(raw_.drop_frames, function_names_[function_id - 1])) {
        stack->erase(stack->begin(), stack->begin() + static_cast<std::ptrdiff_t>(i) + 1);
        return;
      }
    }
  }

  const RawProfile& raw_;
  Symbolizer& sym_;
  StringTable strings_;
  std::vector<std::string> locations_;  // serialized Location messages, by id - 1
  std::vector<std::string> functions_;  // serialized Function messages, by id - 1
  std::vector<uint64_t> mapping_ids_;   // by symbolizer mapping index; 0: not emitted
  std::vector<int> emitted_mappings_;   // symbolizer indexes in id order
  std::vector<bool> all_named_;         // by mapping id - 1
  std::unordered_map<uint64_t, uint64_t> exact_locations_;
  std::unordered_map<uint64_t, uint64_t> return_locations_;
  std::unordered_map<std::string, uint64_t> name_locations_;
  std::vector<uint64_t> location_function_;  // by location id - 1
  std::unordered_map<std::string, uint64_t> function_ids_;
  std::vector<std::string> function_names_;  // by function id - 1
};

}  // namespace

Result<std::string> EncodePprof(const RawProfile& raw, Symbolizer& sym) {
  SLEUTH_RETURN_IF_ERROR(Validate(raw));
  return Encoder(raw, sym).Encode();
}

}  // namespace sleuth::profiles
