// Checked, atomic file writes (see durable_file.hpp for why every output goes through them).
#include "scb/core/durable_file.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include <fmt/format.h>

#include "scb/core/failpoint.hpp"

namespace scb {

namespace fs = std::filesystem;

namespace {

[[noreturn]] void fail(const char* verb, const fs::path& what) {
  throw std::runtime_error(fmt::format("cannot {} {}: {}", verb, what.string(), std::strerror(errno)));
}

}  // namespace

void write_all(int fd, std::string_view bytes, const fs::path& what) {
  const char* p = bytes.data();
  size_t left = bytes.size();
  // Writes stay whole (one write() for a row) unless a fault test asks to stop halfway.
  bool halfway = bytes.size() < 2 || !failpoints_enabled();
  const std::string mid_write = halfway ? std::string() : "mid_write:" + what.filename().string();
  while (left > 0) {
    if (!halfway && left <= bytes.size() / 2) {
      failpoint(mid_write.c_str());
      halfway = true;
    }
    const size_t chunk = halfway ? left : left - bytes.size() / 2;  // stop at half once, for the failpoint
    const ssize_t n = ::write(fd, p, chunk);
    if (n < 0) {
      if (errno == EINTR) continue;
      fail("write", what);
    }
    p += n;
    left -= size_t(n);
  }
}

void fsync_fd(int fd, const fs::path& what) {
  if (::fsync(fd) != 0) fail("sync", what);
}

void fsync_directory(const fs::path& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) fail("open the folder", dir);
  const int rc = ::fsync(fd);
  const int saved = errno;
  ::close(fd);
  errno = saved;
  if (rc != 0) fail("sync the folder", dir);
}

void write_file_durable(const fs::path& path, std::string_view bytes) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) fail("write", path);
  try {
    write_all(fd, bytes, path);
    fsync_fd(fd, path);
  } catch (...) {
    ::close(fd);
    ::unlink(path.c_str());
    throw;
  }
  if (::close(fd) != 0) {
    const int saved = errno;
    ::unlink(path.c_str());
    errno = saved;
    fail("write", path);
  }
}

void write_file_atomic(const fs::path& path, std::string_view bytes) {
  const fs::path tmp = path.string() + ".tmp";
  write_file_durable(tmp, bytes);
  failpoint(("before_rename:" + path.filename().string()).c_str());
  if (::rename(tmp.c_str(), path.c_str()) != 0) fail("rename into place", path);
  fsync_directory(path.parent_path().empty() ? fs::path(".") : path.parent_path());
}

}  // namespace scb
