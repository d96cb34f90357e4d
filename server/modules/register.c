/* Placeholder: filled in by its module's work. */
#include "modules/module.h"

int register__preauth(conn_t *c, hearth_xml_node_t *iq, hearth_arena_t *arena)
{
    return 0;
}

int register__offered(const conn_t *c)
{
    return 0;
}

const module_t module_register = {.name = "register"};
