#include "scb/core/npy.hpp"

#include <bit>
#include <cstring>
#include <fstream>
#include <regex>
#include <stdexcept>
#include <string>

#include <fmt/format.h>

#include "scb/core/durable_file.hpp"

namespace scb {

namespace {

static_assert(std::endian::native == std::endian::little, "the .npy writer assumes a little-endian host");

template <typename T>
void write_impl(const std::filesystem::path& path, const std::vector<uint64_t>& shape,
                const T* data, const char* descr) {
  std::string shape_str = "(";
  uint64_t count = 1;
  for (size_t i = 0; i < shape.size(); ++i) {
    shape_str += std::to_string(shape[i]) + (shape.size() == 1 ? "," : (i + 1 < shape.size() ? ", " : ""));
    count *= shape[i];
  }
  shape_str += ")";
  std::string header = fmt::format("{{'descr': '{}', 'fortran_order': False, 'shape': {}, }}", descr, shape_str);
  // Magic (6) + version (2) + header length (2) + header + '\n', padded to a multiple of 64.
  const size_t unpadded = 10 + header.size() + 1;
  header.append((64 - unpadded % 64) % 64, ' ');
  header.push_back('\n');
  std::string bytes("\x93NUMPY\x01\x00", 8);
  const uint16_t len = static_cast<uint16_t>(header.size());
  bytes.append(reinterpret_cast<const char*>(&len), 2);
  bytes += header;
  bytes.append(reinterpret_cast<const char*>(data), count * sizeof(T));
  write_file_durable(path, bytes);
}

}  // namespace

void write_npy(const std::filesystem::path& path, const std::vector<uint64_t>& shape, const double* data) {
  write_impl(path, shape, data, "<f8");
}
void write_npy(const std::filesystem::path& path, const std::vector<uint64_t>& shape, const float* data) {
  write_impl(path, shape, data, "<f4");
}

NpyArray read_npy(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(fmt::format("cannot read {}", path.string()));
  char magic[8];
  in.read(magic, 8);
  if (!in || std::memcmp(magic, "\x93NUMPY", 6) != 0)
    throw std::runtime_error(fmt::format("{} is not a .npy file", path.string()));
  uint32_t header_len = 0;
  if (magic[6] == 1) {
    uint16_t l = 0;
    in.read(reinterpret_cast<char*>(&l), 2);
    header_len = l;
  } else {
    in.read(reinterpret_cast<char*>(&header_len), 4);
  }
  std::string header(header_len, '\0');
  in.read(header.data(), header_len);
  if (!in) throw std::runtime_error(fmt::format("{}: truncated header", path.string()));
  std::smatch m;
  if (!std::regex_search(header, m, std::regex("'descr':\\s*'([<>|=]?)([fi])(\\d)'")))
    throw std::runtime_error(fmt::format("{}: unsupported dtype (float32 or float64 expected)", path.string()));
  const std::string order = m[1], kind = m[2];
  const int width = std::stoi(m[3]);
  if (order == ">" || kind != "f" || (width != 4 && width != 8))
    throw std::runtime_error(fmt::format("{}: unsupported dtype (little-endian float32 or float64 expected)", path.string()));
  if (std::regex_search(header, std::regex("'fortran_order':\\s*True")))
    throw std::runtime_error(fmt::format("{}: Fortran order is not supported (save it in C order)", path.string()));
  if (!std::regex_search(header, m, std::regex("'shape':\\s*\\(([^)]*)\\)")))
    throw std::runtime_error(fmt::format("{}: no shape in header", path.string()));
  NpyArray a;
  const std::string dims = m[1];
  std::regex num("\\d+");
  uint64_t count = 1;
  for (auto it = std::sregex_iterator(dims.begin(), dims.end(), num); it != std::sregex_iterator(); ++it) {
    a.shape.push_back(std::stoull(it->str()));
    count *= a.shape.back();
  }
  a.data.resize(count);
  if (width == 8) {
    in.read(reinterpret_cast<char*>(a.data.data()), static_cast<std::streamsize>(count * 8));
  } else {
    std::vector<float> f(count);
    in.read(reinterpret_cast<char*>(f.data()), static_cast<std::streamsize>(count * 4));
    for (uint64_t i = 0; i < count; ++i) a.data[i] = f[i];
  }
  if (!in) throw std::runtime_error(fmt::format("{}: truncated data (expected {} values)", path.string(), count));
  return a;
}

}  // namespace scb
