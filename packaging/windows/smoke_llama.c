/* Smoke test of a Windows llama.dll, loaded the way llama-cpp-python's ctypes loader loads it
 * (llama_cpp/_ctypes_extensions.py on win32: os.add_dll_directory(lib_dir), then ctypes.CDLL(path, winmode=0),
 * which is LoadLibraryExW(path, NULL, 0)). Then:
 *   1. every function the Python binding declares is looked up with GetProcAddress (a missing export is what
 *      `AttributeError: function 'llama_x' not found` would be at import time);
 *   2. the GGUF is loaded and a few tokens are generated greedily, through the looked-up functions only.
 * Usage: smoke.exe LIB_DIR MODEL.gguf BINDING_FUNCTIONS.txt        (exit status 0 when every step passed)
 * Built by packaging/windows/cross_build_llama.sh with mingw-w64; llama.h supplies the types only. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <windows.h>

#include "llama.h"

#define LOOK(name) __typeof__(&name) p_##name = (__typeof__(&name))(void *)GetProcAddress(lib, #name)

static wchar_t *wide(const char *text) {
    int n = MultiByteToWideChar(CP_UTF8, 0, text, -1, NULL, 0);
    wchar_t *out = malloc(sizeof(wchar_t) * n);
    MultiByteToWideChar(CP_UTF8, 0, text, -1, out, n);
    return out;
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: %s LIB_DIR MODEL.gguf BINDING_FUNCTIONS.txt\n", argv[0]);
        return 2;
    }
    char path[MAX_PATH * 2];
    if (!AddDllDirectory(wide(argv[1]))) {  /* os.add_dll_directory */
        fprintf(stderr, "AddDllDirectory failed: %lu\n", GetLastError());
        return 1;
    }
    /* the loader's candidates on win32, in its order: llama.dll, then libllama.dll (mingw's name) */
    const char *candidates[] = {"llama.dll", "libllama.dll"};
    for (int i = 0; i < 2; i++) {
        snprintf(path, sizeof path, "%s\\%s", argv[1], candidates[i]);
        if (GetFileAttributesA(path) != INVALID_FILE_ATTRIBUTES) break;
    }
    HMODULE lib = LoadLibraryExW(wide(path), NULL, 0);  /* ctypes.CDLL(path, winmode=0) */
    if (!lib) {
        fprintf(stderr, "LoadLibraryExW(%s) failed: error %lu (a DLL it needs was not found?)\n", path, GetLastError());
        return 1;
    }
    printf("loaded %s\n", path);

    FILE *names = fopen(argv[3], "r");
    if (!names) {
        fprintf(stderr, "cannot read %s\n", argv[3]);
        return 1;
    }
    char name[256];
    int declared = 0, missing = 0;
    while (fscanf(names, "%255s", name) == 1) {
        declared++;
        if (!GetProcAddress(lib, name)) {
            printf("  missing export: %s\n", name);
            missing++;
        }
    }
    fclose(names);
    printf("binding functions exported: %d of %d\n", declared - missing, declared);

    LOOK(llama_backend_init);
    LOOK(llama_model_default_params);
    LOOK(llama_context_default_params);
    LOOK(llama_sampler_chain_default_params);
    LOOK(llama_model_load_from_file);
    LOOK(llama_init_from_model);
    LOOK(llama_model_get_vocab);
    LOOK(llama_tokenize);
    LOOK(llama_batch_get_one);
    LOOK(llama_decode);
    LOOK(llama_sampler_chain_init);
    LOOK(llama_sampler_chain_add);
    LOOK(llama_sampler_init_greedy);
    LOOK(llama_sampler_sample);
    LOOK(llama_token_to_piece);
    LOOK(llama_vocab_is_eog);
    LOOK(llama_sampler_free);
    LOOK(llama_free);
    LOOK(llama_model_free);
    if (!p_llama_backend_init || !p_llama_model_load_from_file || !p_llama_decode || !p_llama_sampler_sample) {
        fprintf(stderr, "a function the smoke test needs is not exported\n");
        return 1;
    }

    p_llama_backend_init();
    struct llama_model_params model_params = p_llama_model_default_params();
    struct llama_model *model = p_llama_model_load_from_file(argv[2], model_params);
    if (!model) {
        fprintf(stderr, "could not load %s\n", argv[2]);
        return 1;
    }
    struct llama_context_params context_params = p_llama_context_default_params();
    context_params.n_ctx = 256;
    context_params.n_threads = 2;
    struct llama_context *ctx = p_llama_init_from_model(model, context_params);
    const struct llama_vocab *vocab = p_llama_model_get_vocab(model);
    const char *prompt = "The gene CD3E encodes";
    llama_token tokens[64];
    int n = p_llama_tokenize(vocab, prompt, (int)strlen(prompt), tokens, 64, true, false);
    if (n <= 0) {
        fprintf(stderr, "tokenize failed (%d)\n", n);
        return 1;
    }
    struct llama_sampler *sampler = p_llama_sampler_chain_init(p_llama_sampler_chain_default_params());
    p_llama_sampler_chain_add(sampler, p_llama_sampler_init_greedy());
    printf("prompt: %s\ngenerated:", prompt);
    struct llama_batch batch = p_llama_batch_get_one(tokens, n);
    int generated = 0;
    llama_token next;
    for (; generated < 12; generated++) {
        if (p_llama_decode(ctx, batch) != 0) {
            fprintf(stderr, "\ndecode failed\n");
            return 1;
        }
        next = p_llama_sampler_sample(sampler, ctx, -1);
        if (p_llama_vocab_is_eog(vocab, next)) break;
        char piece[128];
        int length = p_llama_token_to_piece(vocab, next, piece, sizeof piece - 1, 0, true);
        piece[length > 0 ? length : 0] = 0;
        printf("%s", piece);
        batch = p_llama_batch_get_one(&next, 1);
    }
    printf("\ngenerated %d tokens\n", generated);
    p_llama_sampler_free(sampler);
    p_llama_free(ctx);
    p_llama_model_free(model);
    return (missing == 0 && generated > 0) ? 0 : 1;
}
