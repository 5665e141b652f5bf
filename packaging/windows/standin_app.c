/* A stand-in for the PyInstaller bundle's scelmo-desktop.exe, for packaging/windows/test_installer_wine.sh: the
 * installer's [Run] step calls it with --selftest, which here writes selftest.ok beside the exe and exits 0, so
 * the test sees that the installed program ran. Any other argument exits 0. */
#include <stdio.h>
#include <string.h>
#include <windows.h>

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "--selftest") == 0) {
        char path[MAX_PATH];
        DWORD n = GetModuleFileNameA(NULL, path, MAX_PATH);
        while (n > 0 && path[n - 1] != '\\') n--;
        strcpy(path + n, "selftest.ok");
        FILE *marker = fopen(path, "w");
        if (!marker) return 1;
        fputs("stand-in self-test ran\n", marker);
        fclose(marker);
    }
    return 0;
}
