# Warnings for quopt's own targets (never for third-party headers, which are SYSTEM includes).
function(quopt_set_warnings target)
  target_compile_options(${target} PRIVATE
    $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor -Wcast-align
                               -Wunused -Woverloaded-virtual -Wnull-dereference -Wimplicit-fallthrough>)
endfunction()

if(QUOPT_ENABLE_SANITIZERS)
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=address,undefined)
endif()
