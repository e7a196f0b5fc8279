#!/bin/sh
echo ${vars.greeting} from ${namespace}
