# Writes the build-identity header at every build, touching it only when the commit changed, so
# `--version` and the runs table name the commit actually built (not the one at configure time).
# Inputs: SRC (version.hpp.in), DST (generated header), SOURCE_DIR, PROJECT_VERSION.
execute_process(COMMAND git rev-parse --short=12 HEAD WORKING_DIRECTORY ${SOURCE_DIR}
                OUTPUT_VARIABLE IPFSA_GIT_COMMIT OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
if(NOT IPFSA_GIT_COMMIT)
  set(IPFSA_GIT_COMMIT "unknown")
endif()
execute_process(COMMAND git status --porcelain --untracked-files=no WORKING_DIRECTORY ${SOURCE_DIR}
                OUTPUT_VARIABLE dirty OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
if(dirty)
  set(IPFSA_GIT_COMMIT "${IPFSA_GIT_COMMIT}-dirty")
endif()
configure_file(${SRC} ${DST}.tmp @ONLY)
file(COPY_FILE ${DST}.tmp ${DST} ONLY_IF_DIFFERENT)
file(REMOVE ${DST}.tmp)
