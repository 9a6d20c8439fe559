#pragma once
// NumPy .npy files (format 1.0): little-endian, C order, float32 or float64.
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace scb {

struct NpyArray {
  std::vector<uint64_t> shape;
  std::vector<double> data;  // C order, converted to double on load
};

// Throws std::runtime_error with the file name and the reason on any malformed file (a shape
// that is negative, or larger than the file's data, is found from the header alone).
NpyArray read_npy(const std::filesystem::path& path);
// The shape from a checked header (the data's size included), without reading the data.
std::vector<uint64_t> read_npy_shape(const std::filesystem::path& path);
// A rows x cols matrix (C order) for config key `key`; any problem is a ConfigError naming the key.
std::vector<double> read_npy_matrix(const std::filesystem::path& path, uint64_t rows, uint64_t cols, const std::string& key);
// Writes durably (scb/core/durable_file.hpp), not atomically: run outputs are written into a folder
// that is renamed into place once complete.
void write_npy(const std::filesystem::path& path, const std::vector<uint64_t>& shape,
               const double* data);
void write_npy(const std::filesystem::path& path, const std::vector<uint64_t>& shape,
               const float* data);

}  // namespace scb
