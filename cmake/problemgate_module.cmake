# Warnings and sanitizers for our own targets only (no global flags).
function(problemgate_target_options target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wshadow)
  if(PROBLEMGATE_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
  if(PROBLEMGATE_SANITIZERS)
    string(REPLACE ";" "," _san "${PROBLEMGATE_SANITIZERS}")
    target_compile_options(${target} PRIVATE -fsanitize=${_san} -fno-omit-frame-pointer -fno-sanitize-recover=all)
    target_link_options(${target} PRIVATE -fsanitize=${_san})
    # GCC warns, once per Asio handler type, that TSan does not model the
    # std::atomic_thread_fence inside Asio's handler dispatch. Nothing in our code can act on
    # it, and it buried real warnings; TSan's own reports (halt_on_error) are what CI checks.
    if("thread" IN_LIST PROBLEMGATE_SANITIZERS AND CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
      target_compile_options(${target} PRIVATE -Wno-tsan)
    endif()
  endif()
endfunction()

# problemgate_module(<name> SOURCES ... DEPS ...): a static library problemgate_<name>
# with alias problemgate::<name>. DEPS is the module's allowed dependency list.
function(problemgate_module name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS" ${ARGN})
  add_library(problemgate_${name} STATIC ${ARG_SOURCES})
  add_library(problemgate::${name} ALIAS problemgate_${name})
  target_include_directories(problemgate_${name} PUBLIC ${PROJECT_SOURCE_DIR}/include
                                                 PRIVATE ${PROJECT_SOURCE_DIR}/src)
  target_link_libraries(problemgate_${name} PUBLIC ${ARG_DEPS})
  problemgate_target_options(problemgate_${name})
  if(PROBLEMGATE_SANITIZERS)
    string(REPLACE ";" "," _san "${PROBLEMGATE_SANITIZERS}")
    target_link_options(problemgate_${name} INTERFACE -fsanitize=${_san})
  endif()
endfunction()
