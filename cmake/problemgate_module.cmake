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
  # Layering the build enforces: a module sees only its own headers and, through its link line,
  # its dependencies' — a wrong #include fails to compile. Each module gets a view directory of
  # symbolic links (build/module-views/<name>/problemgate/<name> -> include/problemgate/<name>,
  # build/module-views/<name>-src/<name> -> src/<name>) instead of all of include/ and src/.
  set(_public_view ${PROJECT_BINARY_DIR}/module-views/${name})
  set(_private_view ${PROJECT_BINARY_DIR}/module-views/${name}-src)
  file(MAKE_DIRECTORY ${_public_view}/problemgate ${_private_view})
  if(IS_DIRECTORY ${PROJECT_SOURCE_DIR}/include/problemgate/${name})
    file(CREATE_LINK ${PROJECT_SOURCE_DIR}/include/problemgate/${name}
         ${_public_view}/problemgate/${name} SYMBOLIC)
  endif()
  file(CREATE_LINK ${CMAKE_CURRENT_SOURCE_DIR} ${_private_view}/${name} SYMBOLIC)
  target_include_directories(problemgate_${name} PUBLIC ${_public_view} PRIVATE ${_private_view})
  target_link_libraries(problemgate_${name} PUBLIC ${ARG_DEPS})
  problemgate_target_options(problemgate_${name})
  if(PROBLEMGATE_SANITIZERS)
    string(REPLACE ";" "," _san "${PROBLEMGATE_SANITIZERS}")
    target_link_options(problemgate_${name} INTERFACE -fsanitize=${_san})
  endif()
endfunction()
