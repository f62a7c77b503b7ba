/* tiny_endbr starts with endbr64 and is 7 bytes long: the jump goes
 * after the endbr64 and needs 9. */
void tiny_endbr(void)
{
}
