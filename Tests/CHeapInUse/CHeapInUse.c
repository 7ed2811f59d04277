// Everything is in the header (a static inline function); SwiftPM needs one source file.
#include "CHeapInUse.h"
