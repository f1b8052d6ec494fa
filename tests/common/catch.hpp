// Catch2 shim: Debian ships v2 (catch2/catch.hpp); v3 splits headers. Tests include this.
#pragma once
#if __has_include(<catch2/catch_all.hpp>)
#include <catch2/catch_all.hpp>
#else
#include <catch2/catch.hpp>
#endif
