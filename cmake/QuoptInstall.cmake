# Install rules (GNUInstallDirs). `cmake --install <build> --prefix P` lays out:
#   P/bin/quopt                                   the program
#   P/share/quopt/inputs/                         model, optimizer, run, data and study files
#   P/share/quopt/jobs/                           the Slurm scripts (they find their siblings from here)
#   P/share/quopt/postprocess/quopt_post/         the report package: PYTHONPATH=P/share/quopt/postprocess
#   P/share/doc/quopt/                            README.md and docs/
# share/quopt mirrors the checkout's layout, so whatever locates a sibling relative to its own file
# (jobs/*.sbatch -> jobs/lib.sh and postprocess/, a study file -> ../models/) works from the prefix too;
# nothing installed names the source or build directory. docs/install.md shows how to run from it.
include(GNUInstallDirs)

set(QUOPT_INSTALL_DATADIR "${CMAKE_INSTALL_DATADIR}/quopt" CACHE STRING
    "where inputs/, jobs/ and postprocess/ are installed, relative to the prefix")

# The dependencies live in their own prefixes under Spack or a module system: keep their library
# directories in the installed binary's RUNPATH (CMake drops the build tree's RPATH on install).
# A CMAKE_INSTALL_RPATH_USE_LINK_PATH given on the command line (Spack gives one) takes precedence.
if(NOT DEFINED CMAKE_INSTALL_RPATH_USE_LINK_PATH)
  set_target_properties(quopt PROPERTIES INSTALL_RPATH_USE_LINK_PATH ON)
endif()

install(TARGETS quopt RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})

install(DIRECTORY inputs/ DESTINATION ${QUOPT_INSTALL_DATADIR}/inputs USE_SOURCE_PERMISSIONS
        PATTERN "*.jsonl" EXCLUDE)  # task files a user converted locally (git-ignored), not ours to ship
install(DIRECTORY jobs/ DESTINATION ${QUOPT_INSTALL_DATADIR}/jobs USE_SOURCE_PERMISSIONS)
install(DIRECTORY postprocess/quopt_post DESTINATION ${QUOPT_INSTALL_DATADIR}/postprocess
        PATTERN "__pycache__" EXCLUDE PATTERN "*.pyc" EXCLUDE)

install(FILES README.md DESTINATION ${CMAKE_INSTALL_DOCDIR})
install(DIRECTORY docs/ DESTINATION ${CMAKE_INSTALL_DOCDIR})
