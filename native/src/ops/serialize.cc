// Reading what torch.save wrote: PyTorch's zip format (>= 1.6), through libtorch's own
// unpickler (torch::jit::pickle_load: a restricted reader that rebuilds dicts, lists,
// numbers, strings and tensors and runs no code). No unpickler or zip reader of cqseg's.
#include "../common.h"

#include <torch/csrc/jit/serialization/pickle.h>

#include <fstream>
#include <iterator>

namespace cqseg {

namespace {

// The tensors of a loaded object, each named by its key path (keys joined by '\x1f': state
// dict keys hold dots themselves), up to four dicts deep; other values listed as
// "path: kind" (an epoch, a learning rate, a string).
void Collect(const c10::IValue& v, const std::string& path, int depth, NamedTensors& out) {
  if (v.isTensor()) {
    out.names.push_back(path);
    out.tensors.push_back(v.toTensor());
    return;
  }
  if (v.isGenericDict() && depth < 4) {
    for (const auto& kv : v.toGenericDict()) {
      const std::string key = kv.key().isString() ? kv.key().toStringRef() : kv.key().isInt() ? std::to_string(kv.key().toInt()) : "?";
      Collect(kv.value(), path.empty() ? key : path + '\x1f' + key, depth + 1, out);
    }
    return;
  }
  out.others.push_back((path.empty() ? std::string("(the file)") : path) + ": " + v.tagKind());
}

NamedTensors TorchLoad(const std::string& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw std::invalid_argument(file + ": cannot be read (not found or no permission)");
  std::vector<char> data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (data.empty()) throw std::invalid_argument(file + ": is empty");
  const bool zip = data.size() >= 4 && data[0] == 'P' && data[1] == 'K' && data[2] == 3 && data[3] == 4;
  if (!zip) {
    if (static_cast<unsigned char>(data[0]) == 0x80) {
      throw std::invalid_argument(file + ": is in PyTorch's legacy format (torch.save before PyTorch 1.6, or _use_new_zipfile_serialization=False), "
                                  "which libtorch cannot read; re-save it from Python: torch.save(torch.load('" + file + "'), 'new.pth')");
    }
    throw std::invalid_argument(file + ": is not a PyTorch checkpoint (no zip archive as torch.save writes, nor safetensors)");
  }
  c10::IValue v;
  try {
    v = torch::jit::pickle_load(data);
  } catch (const c10::Error& e) {
    const std::string msg = e.what_without_backtrace();
    if (msg.find("Expected GenericDict but got None") != std::string::npos) {
      throw std::invalid_argument(file + ": holds an OrderedDict (what model.state_dict() returns), which the unpickler of libtorch " TORCH_VERSION
                                  " reads as None (pytorch/pytorch#37213, fixed in PyTorch 2.6's libtorch). Re-save it as a plain dict: "
                                  "torch.save(dict(state_dict), 'new.pth'), or build cqseg against PyTorch >= 2.6's libtorch (LIBTORCH=..., npm run setup)");
    }
    if (msg.find("Unknown opcode for unpickling at 0x73") != std::string::npos || msg.find("Unknown opcode for unpickling at 0x61") != std::string::npos) {
      // pickle's SETITEM and APPEND: how Python writes a dict or a list of one entry
      throw std::invalid_argument(file + ": holds a dict or list of a single entry, which the unpickler of libtorch " TORCH_VERSION
                                  " cannot read (pickle opcodes SETITEM, APPEND). Save the state dict alone: torch.save(dict(model.state_dict()), 'new.pth')");
    }
    throw std::invalid_argument(file + ": is not a readable PyTorch checkpoint (" + msg.substr(0, msg.find('\n')) + ")");
  }
  NamedTensors out;
  Collect(v, "", 0, out);
  return out;
}

}  // namespace

void RegisterSerializeOps(Ops& ops) {
  // (path) -> { names, tensors, others }: the tensors of a torch.save file by key path
  OP("torchLoad", return TorchLoad(a.str(0)););
}

}  // namespace cqseg
