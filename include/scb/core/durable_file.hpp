#pragma once
// Every file the engine writes goes through here. write_file_atomic writes a temporary name,
// checks every write, fsync and close, then renames it into place and syncs the folder: a reader
// (or a --resume after a kill) sees the old file or the whole new one, and a full disk or an
// unwritable folder is an exception naming the file and the system's reason (errno text),
// never a short or empty file behind a success.
#include <filesystem>
#include <string_view>

namespace scb {

// Writes every byte of `bytes` to `fd` (retrying short writes and EINTR); `what` names the file.
void write_all(int fd, std::string_view bytes, const std::filesystem::path& what);
// fsync of an open file; throws naming `what`.
void fsync_fd(int fd, const std::filesystem::path& what);
// fsync of a folder, so a rename or a new file in it survives a crash; throws naming it.
void fsync_directory(const std::filesystem::path& dir);
// `path` written with `bytes`, every write, fsync and close checked (a failed file is removed), but
// not atomically: for files inside a folder that is itself renamed into place once complete (a
// run's folder), where a temporary name per file would only add a rename and a folder sync each.
void write_file_durable(const std::filesystem::path& path, std::string_view bytes);
// `path` replaced by `bytes` as a whole (see above). The temporary is `path` + ".tmp".
void write_file_atomic(const std::filesystem::path& path, std::string_view bytes);

}  // namespace scb
