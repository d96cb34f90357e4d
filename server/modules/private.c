/* Placeholder: filled in by its module's work. */
#include "modules/module.h"

const module_t module_private = {.name = "private"};
