/* alias_other is another name of alias_target in the target. */
int alias_target(int x)
{
        return x;
}

int alias_other(int x)
{
        return x;
}
