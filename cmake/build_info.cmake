# Writes the build-info header that `problemgate --version` prints:
#   cmake -DSOURCE_DIR=... -DOUTPUT=... -DVERSION=... -DBUILD_TYPE=... [-DCOMMIT=...] -P build_info.cmake
# Run at every build (src/CMakeLists.txt), so the commit never goes stale after a commit,
# checkout or rebase; configure_file rewrites OUTPUT only when its content changes, so an
# unchanged commit recompiles nothing.
#
# COMMIT (the PROBLEMGATE_COMMIT cache variable) wins when set: builds from a tarball or an
# image build context without .git can pass it. Otherwise `git rev-parse --short HEAD` in
# SOURCE_DIR, but only when SOURCE_DIR is the top of that checkout (a source tree unpacked
# inside some other repository must not report that repository's commit); else "unknown".
if(NOT COMMIT)
  set(COMMIT "unknown")
  find_program(_git git)
  if(_git)
    execute_process(COMMAND "${_git}" rev-parse --show-toplevel
                    WORKING_DIRECTORY "${SOURCE_DIR}" RESULT_VARIABLE _rc
                    OUTPUT_VARIABLE _top OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
    if(_rc EQUAL 0)
      file(REAL_PATH "${_top}" _top)
      file(REAL_PATH "${SOURCE_DIR}" _src)
      if(_top STREQUAL _src)
        execute_process(COMMAND "${_git}" rev-parse --short HEAD
                        WORKING_DIRECTORY "${SOURCE_DIR}" RESULT_VARIABLE _rc
                        OUTPUT_VARIABLE _head OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
        if(_rc EQUAL 0 AND _head MATCHES "^[0-9a-f]+$")
          set(COMMIT "${_head}")
        endif()
      endif()
    endif()
  endif()
endif()
if(NOT BUILD_TYPE)
  set(BUILD_TYPE "unspecified")
endif()
configure_file("${CMAKE_CURRENT_LIST_DIR}/build_info.hpp.in" "${OUTPUT}" @ONLY)
