#pragma once
// NumPy .npy files (format 1.0): little-endian, C order, float32 or float64.
#include <cstdint>
#include <filesystem>
#include <vector>

namespace scb {

struct NpyArray {
  std::vector<uint64_t> shape;
  std::vector<double> data;  // C order, converted to double on load
};

// Throws std::runtime_error with the file name and the reason on any malformed file.
NpyArray read_npy(const std::filesystem::path& path);
// Writes durably (scb/core/durable_file.hpp), not atomically: run outputs are written into a folder
// that is renamed into place once complete.
void write_npy(const std::filesystem::path& path, const std::vector<uint64_t>& shape,
               const double* data);
void write_npy(const std::filesystem::path& path, const std::vector<uint64_t>& shape,
               const float* data);

}  // namespace scb
