# Writes OUT: a header defining NIBBLE_CPU_GENERATOR_HASH, the SHA-256 of the kernel generator's
# sources (SOURCES, ';'-separated). It is part of the JIT's disk-cache key, so a changed generator
# never loads objects an older one compiled. The file is rewritten only when the hash changes.
set(all "")
foreach(f ${SOURCES})
  file(SHA256 ${f} h)
  string(APPEND all "${h}")
endforeach()
string(SHA256 hash "${all}")
set(text "#pragma once\n#define NIBBLE_CPU_GENERATOR_HASH \"${hash}\"\n")
if(EXISTS ${OUT})
  file(READ ${OUT} old)
  if(old STREQUAL text)
    return()
  endif()
endif()
file(WRITE ${OUT} "${text}")
