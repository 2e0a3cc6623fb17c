// The one translation unit that compiles Boost.Asio, Asio SSL and Beast
// (separate-compilation mode, see CMakeLists.txt).
#include <boost/asio/impl/src.hpp>
#include <boost/asio/ssl/impl/src.hpp>
#include <boost/beast/src.hpp>
