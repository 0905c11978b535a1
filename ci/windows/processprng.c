/* bcryptprimitives.dll for Wine 8.0, which has none: Rust's std (1.78+)
 * imports ProcessPrng from it for every random key (HashMap's RandomState,
 * among others), so no Rust program starts without it. Built by
 * ci/windows.sh with mingw-w64 and placed in the Wine prefix's system32.
 * ProcessPrng fills the buffer from RtlGenRandom (advapi32's
 * SystemFunction036, which Wine implements over the host's generator);
 * like the real one, it never fails. Not for real Windows, which ships
 * its own. */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG len);

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len)
{
    while (len > 0) {
        ULONG chunk = len > 0x10000000 ? 0x10000000 : (ULONG)len;
        if (!SystemFunction036(data, chunk))
            ExitProcess(0xC000000D); /* the real ProcessPrng cannot fail either */
        data += chunk;
        len -= chunk;
    }
    return TRUE;
}
