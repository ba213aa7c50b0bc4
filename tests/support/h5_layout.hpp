#pragma once
// The layout of an HDF5 file as the tests compare it: every dataset's path with its dtype and shape
// ("f32 [64, 32]"), and the attribute names of the root. Two files with the same layout are read by the
// same code (a GPU run's checkpoint and a CPU run's, for example).
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "io/h5file.hpp"

namespace quopt::testing {

inline std::map<std::string, std::string> h5_datasets(const H5File& f, const std::string& group = "") {
  std::map<std::string, std::string> out;
  for (const auto& name : f.list(group)) {
    const std::string path = group.empty() ? name : group + "/" + name;
    if (f.is_group(path)) {
      const auto below = h5_datasets(f, path);
      out.insert(below.begin(), below.end());
    } else {
      out[path] = cat(dtype_name(f.dtype(path)), " ", shape_str(f.shape(path)));
    }
  }
  return out;
}

// The two files hold the same datasets (paths, dtypes, shapes) and the same root attributes, but for
// `extra` ones that only `path` has (a resumed run's run.h5 has resume_history).
inline void expect_same_layout(const std::string& path, const std::string& reference,
                               const std::vector<std::string>& extra = {}) {
  const H5File f = H5File::open_read(path, MPI_COMM_SELF), r = H5File::open_read(reference, MPI_COMM_SELF);
  const auto datasets = h5_datasets(f);
  EXPECT_GT(datasets.size(), 0u) << path << " holds no datasets";
  EXPECT_EQ(datasets, h5_datasets(r)) << path << " against " << reference;
  std::vector<std::string> want = r.attr_names("/");
  want.insert(want.end(), extra.begin(), extra.end());
  std::sort(want.begin(), want.end());
  EXPECT_EQ(f.attr_names("/"), want) << path << " against " << reference;
}

}  // namespace quopt::testing
