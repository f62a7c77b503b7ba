/* tiny is 3 bytes long in the target: no room for a jump. */
void tiny(void)
{
}
