# petrel_library(NAME SOURCES ... DEPS ...): one static library per src/<dir>, target
# petrel_<name>, alias petrel::<name>; includes are rooted at src/ ("base/result.h").
function(petrel_library name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS" ${ARGN})
  add_library(petrel_${name} STATIC ${ARG_SOURCES})
  add_library(petrel::${name} ALIAS petrel_${name})
  target_include_directories(petrel_${name} PUBLIC ${PROJECT_SOURCE_DIR}/src)
  target_link_libraries(petrel_${name} PUBLIC ${ARG_DEPS})
endfunction()

# petrel_test(NAME SOURCES ... DEPS ...): a GoogleTest binary registered with ctest.
function(petrel_test name)
  if(NOT PETREL_TESTS OR PETREL_FUZZ)
    return()
  endif()
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} GTest::gtest GTest::gmock GTest::gtest_main)
  add_test(NAME unit.${name} COMMAND ${name})
  set_property(GLOBAL APPEND PROPERTY PETREL_UNIT_TESTS ${name})
  set_tests_properties(unit.${name} PROPERTIES LABELS unit TIMEOUT 300)
endfunction()
