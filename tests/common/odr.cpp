// The ODR object: includes every public header of the core target and of tandem::eval.
// Linked into every test executable beside the tests (which include the same headers), so
// a non-inline definition in a header fails the link with a duplicate symbol.
#include "tandem/backends/ngram_text.hpp"
#include "tandem/constrain.hpp"
#include "tandem/eval.hpp"
#include "tandem/tandem.hpp"
#include "tandem/text.hpp"
