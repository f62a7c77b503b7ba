/* lpt_tag() (in the executable) returns lpt_extra() of liblpt.so (42):
 * a symbol of another object of the process. The "alt" liblpt.so lacks
 * it, so applying this to a process that uses that one is refused. */
int lpt_extra(void);
int lpt_tag(void);

int lpt_tag(void)
{
        return lpt_extra();
}
