// .npy reading and writing; reading checks a header against the file before it trusts it.
#include "scb/core/npy.hpp"

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <regex>
#include <stdexcept>
#include <string>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "scb/core/config_error.hpp"

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

namespace {

// The header of a .npy file, checked against the file's size before any data is allocated:
// a header that claims more values than the file holds is a damaged file, not an allocation.
struct NpyHeader {
  std::vector<uint64_t> shape;
  uint64_t count = 1;
  int width = 8;              // bytes per value (float32 or float64)
  uint64_t data_offset = 0;
};

uint32_t read_header_length(std::ifstream& in, const std::filesystem::path& path) {
  char magic[8];
  in.read(magic, 8);
  if (!in || std::memcmp(magic, "\x93NUMPY", 6) != 0) throw std::runtime_error(fmt::format("{} is not a .npy file", path.string()));
  if (magic[6] == 1) {
    uint16_t l = 0;
    in.read(reinterpret_cast<char*>(&l), 2);
    return l;
  }
  uint32_t l = 0;
  in.read(reinterpret_cast<char*>(&l), 4);
  return l;
}

void parse_dtype(const std::string& header, const std::filesystem::path& path, NpyHeader& h) {
  std::smatch m;
  if (!std::regex_search(header, m, std::regex("'descr':\\s*'([<>|=]?)([fi])(\\d)'")))
    throw std::runtime_error(fmt::format("{}: unsupported dtype (float32 or float64 expected)", path.string()));
  const std::string order = m[1], kind = m[2];
  h.width = std::stoi(m[3]);
  if (order == ">" || kind != "f" || (h.width != 4 && h.width != 8))
    throw std::runtime_error(fmt::format("{}: unsupported dtype (little-endian float32 or float64 expected)", path.string()));
  if (std::regex_search(header, std::regex("'fortran_order':\\s*True")))
    throw std::runtime_error(fmt::format("{}: Fortran order is not supported (save it in C order)", path.string()));
}

// "(3, 4)", "(5,)" or "()": non-negative decimals only, and a product that fits in the file.
void parse_shape(const std::string& header, const std::filesystem::path& path, NpyHeader& h) {
  std::smatch m;
  if (!std::regex_search(header, m, std::regex("'shape':\\s*\\(([^)]*)\\)")))
    throw std::runtime_error(fmt::format("{}: no shape in header", path.string()));
  const std::string dims = m[1];
  if (!std::regex_match(dims, std::regex("\\s*(\\d{1,12}\\s*(,\\s*\\d{1,12}\\s*)*,?\\s*)?")))
    throw std::runtime_error(fmt::format("{}: bad shape ({}) in header (non-negative integers expected)", path.string(), dims));
  std::regex num("\\d+");
  for (auto it = std::sregex_iterator(dims.begin(), dims.end(), num); it != std::sregex_iterator(); ++it) {
    h.shape.push_back(std::stoull(it->str()));
    if (h.shape.back() != 0 && h.count > (uint64_t(1) << 50) / h.shape.back())
      throw std::runtime_error(fmt::format("{}: shape ({}) is too large", path.string(), dims));
    h.count *= h.shape.back();
  }
}

NpyHeader read_header(std::ifstream& in, const std::filesystem::path& path) {
  const uint32_t header_len = read_header_length(in, path);
  if (!in || header_len > (1u << 20)) throw std::runtime_error(fmt::format("{}: truncated or damaged header", path.string()));
  std::string header(header_len, '\0');
  in.read(header.data(), header_len);
  if (!in) throw std::runtime_error(fmt::format("{}: truncated header", path.string()));
  NpyHeader h;
  parse_dtype(header, path, h);
  parse_shape(header, path, h);
  h.data_offset = uint64_t(in.tellg());
  std::error_code ec;
  const uint64_t size = std::filesystem::file_size(path, ec);
  if (ec || size != h.data_offset + h.count * uint64_t(h.width))
    throw std::runtime_error(fmt::format("{}: holds {} bytes of data where its shape needs {} ({} values)", path.string(),
                                         ec ? 0 : size - std::min(size, h.data_offset), h.count * uint64_t(h.width), h.count));
  return h;
}

std::ifstream open_npy(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(fmt::format("cannot read {} ({})", path.string(), std::strerror(errno ? errno : ENOENT)));
  return in;
}

}  // namespace

std::vector<uint64_t> read_npy_shape(const std::filesystem::path& path) {
  std::ifstream in = open_npy(path);
  return read_header(in, path).shape;
}

NpyArray read_npy(const std::filesystem::path& path) {
  std::ifstream in = open_npy(path);
  const NpyHeader h = read_header(in, path);
  NpyArray a;
  a.shape = h.shape;
  a.data.resize(h.count);
  if (h.width == 8) {
    in.read(reinterpret_cast<char*>(a.data.data()), static_cast<std::streamsize>(h.count * 8));
  } else {
    std::vector<float> f(h.count);
    in.read(reinterpret_cast<char*>(f.data()), static_cast<std::streamsize>(h.count * 4));
    for (uint64_t i = 0; i < h.count; ++i) a.data[i] = f[i];
  }
  if (!in) throw std::runtime_error(fmt::format("{}: truncated data (expected {} values)", path.string(), h.count));
  return a;
}

std::vector<double> read_npy_matrix(const std::filesystem::path& path, uint64_t rows, uint64_t cols, const std::string& key) {
  try {
    const std::vector<uint64_t> shape = read_npy_shape(path);
    if (shape.size() != 2 || shape[0] != rows || shape[1] != cols)
      throw std::runtime_error(fmt::format("{} has shape ({}), expected ({}, {})", path.string(), fmt::join(shape, ", "), rows, cols));
    return read_npy(path).data;
  } catch (const std::runtime_error& e) {
    throw ConfigError(fmt::format("{}: {}", key, e.what()));
  }
}

}  // namespace scb
