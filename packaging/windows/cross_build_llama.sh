#!/usr/bin/env bash
# Cross-build the llama.cpp that llama-cpp-python (the version pinned in requirements.lock) vendors, for Windows
# x64, with Debian's mingw-w64, and smoke-test it under wine: the DLL is loaded the way llama-cpp-python's ctypes
# loader loads it (os.add_dll_directory, then LoadLibraryExW with winmode 0), every function its binding declares
# is looked up, and a few tokens are generated with the project's embedded GGUF.
#
#   apt-get install mingw-w64 wine wine64        # Debian packages; nothing else is downloaded but the sdist (PyPI)
#   bash packaging/windows/cross_build_llama.sh [WORK_DIR]
#
# Portable CPU flags, pinned: x86-64-v3 (AVX2, FMA, F16C; every x86 CPU since 2013-2015), no -march=native.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
WORK="${1:-$(mktemp -d)}"
mkdir -p "$WORK"
PIN="$(grep -E '^llama-cpp-python==' "$ROOT/requirements.lock")"
VERSION="${PIN#*==}"
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"
SDIST="$WORK/llama_cpp_python-$VERSION.tar.gz"
[ -f "$SDIST" ] || "$PYTHON" -m pip download --quiet --no-deps --no-binary :all: "$PIN" -d "$WORK"
SRC="$WORK/llama_cpp_python-$VERSION"
[ -d "$SRC" ] || tar xzf "$SDIST" -C "$WORK"
# the one source guard: Debian's mingw-w64 10 headers lack THREAD_POWER_THROTTLING_STATE (Windows 11's per-thread
# power-throttling opt-out, an optimisation ggml skips when the constant is absent; MSVC's SDK has it)
sed -i 's/^\(\s*\)#if _WIN32_WINNT >= 0x0602$/\1#if _WIN32_WINNT >= 0x0602 \&\& defined(THREAD_POWER_THROTTLING_CURRENT_VERSION)/' \
  "$SRC/vendor/llama.cpp/ggml/src/ggml-cpu/ggml-cpu.c"
BUILD="$WORK/build-win64"
CC=x86_64-w64-mingw32-gcc-posix
CXX=x86_64-w64-mingw32-g++-posix
# mingw's C++ runtime, libgcc and winpthreads linked in, so the DLLs need only what Windows itself ships
STATIC_RUNTIME="-Wl,--exclude-libs,libgcc.a:libgcc_eh.a:libstdc++.a:libwinpthread.a -static-libgcc -static-libstdc++ -Wl,-Bstatic,--whole-archive -lwinpthread -Wl,--no-whole-archive,-Bdynamic"
# One self-contained llama.dll (ggml linked in): the binding loads it with LoadLibraryExW(path, NULL, 0), under
# which Windows does not look in the DLL's own folder for the DLLs it imports, so a split build (llama.dll importing
# ggml.dll, ggml-base.dll, ggml-cpu.dll) fails with error 126 unless the process set other default DLL directories.
cmake -S "$SRC/vendor/llama.cpp" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_SYSTEM_NAME=Windows -DCMAKE_SYSTEM_PROCESSOR=x86_64 \
  -DCMAKE_C_COMPILER="$CC" -DCMAKE_CXX_COMPILER="$CXX" -DCMAKE_RC_COMPILER=x86_64-w64-mingw32-windres \
  -DBUILD_SHARED_LIBS=OFF -DCMAKE_POSITION_INDEPENDENT_CODE=ON \
  -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON \
  -DGGML_OPENMP=OFF -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
  -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_COMMON=OFF >"$WORK/cmake.log"
cmake --build "$BUILD" --target llama -j "$(nproc)" >"$WORK/build.log"
LIB="$WORK/llama_cpp/lib"  # where llama-cpp-python's wheel keeps its DLLs
rm -rf "$LIB" && mkdir -p "$LIB"
ARCHIVES=$(find "$BUILD" -name 'libllama.a' -o -name 'ggml*.a' -o -name 'libggml*.a' | sort)
# shellcheck disable=SC2086
"$CXX" -shared -o "$LIB/llama.dll" -Wl,--whole-archive $ARCHIVES -Wl,--no-whole-archive -Wl,--export-all-symbols \
  $STATIC_RUNTIME -ladvapi32
echo "built: $(cd "$LIB" && ls) from $(echo $ARCHIVES | wc -w) archives; imports: $(x86_64-w64-mingw32-objdump -p "$LIB/llama.dll" | grep 'DLL Name' | awk '{print $3}' | tr '\n' ' ')"
(cd "$LIB" && sha256sum ./*.dll)

# the functions the Python binding declares (@ctypes_function("name", ...)) must all be exported
"$PYTHON" - "$SRC/llama_cpp/llama_cpp.py" >"$WORK/binding_functions.txt" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
print("\n".join(sorted(set(re.findall(r'ctypes_function\(\s*"(\w+)"', text)))))
PY
# the smoke program sits in another folder than the DLLs, as python.exe does
SMOKE="$WORK/bin/smoke.exe"
mkdir -p "$WORK/bin"
"$CC" -O1 -std=gnu11 -I "$SRC/vendor/llama.cpp/include" -I "$SRC/vendor/llama.cpp/ggml/include" \
  "$ROOT/packaging/windows/smoke_llama.c" -o "$SMOKE" -static
GGUF="$(ls "$ROOT"/models/*.gguf | head -1)"
export WINEDEBUG=-all WINEPREFIX="${WINEPREFIX:-$WORK/wineprefix}"
wine "$SMOKE" "$(winepath -w "$LIB")" "$(winepath -w "$GGUF")" "$(winepath -w "$WORK/binding_functions.txt")"
